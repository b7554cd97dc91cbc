"""Peak memory that one call of ``embed`` or ``silhouette_score`` adds, on the CPU, measured in a
fresh process (this script). Used by tests/test_robustness.py; run by hand for the docstrings'
figures:

    python tests/_memory_probe.py embed 60000 --model small_cnn   # SmallCNN, 60,000 28x28 images
    python tests/_memory_probe.py embed 60000 --model linear      # a one-layer model (the test's)
    python tests/_memory_probe.py silhouette 60000                 # 60,000 x 128 float32, 10 classes
    python tests/_memory_probe.py embed 60000 silhouette 20000     # several, one after the other

Prints one JSON line per measurement: what was measured, ``peak_mib`` and ``seconds``. Each
measurement runs in a fresh child process forked from this one after the imports (so memory
freed by one call cannot be reused, unseen, by the next; torch is imported once). The method is
benchmarks/bench_silhouette.py's: build the inputs, make a small warm-up call (one-off library
buffers are not the call's memory), reset the peak resident memory through
``/proc/self/clear_refs`` (Linux), call once, and report ``VmHWM`` minus ``VmRSS`` before the
call. Torch's CPU allocator is invisible to ``tracemalloc``, and ``ru_maxrss`` cannot be reset.
Inputs are random (the memory does not depend on the values): images uniform in 0..255, latents
Gaussian clusters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from latentboost_lab.data import DATASETS, TensorData  # noqa: E402
from latentboost_lab.metrics import embed, silhouette_score  # noqa: E402
from latentboost_lab.models import LatentClassifier, SmallCNN  # noqa: E402


def status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def linear_model(latent_dim: int = 128) -> LatentClassifier:
    """A (logits, latent) model that costs little to run: flatten, one linear layer."""
    return LatentClassifier(
        torch.nn.Flatten(),
        torch.nn.Linear(28 * 28, latent_dim),
        torch.nn.Linear(latent_dim, 10),
        (1, 28, 28),
    )


def prepare(what: str, n: int, model: str, batch_size: int):
    """The call to measure (a function of no arguments) and a warm-up call."""
    generator = torch.Generator().manual_seed(0)
    if what == "embed":
        info = DATASETS["fashion_mnist"]
        images = torch.randint(0, 256, (n, 1, 28, 28), generator=generator, dtype=torch.uint8)
        labels = torch.arange(n) % 10
        data = TensorData(info, {"test": (images, labels)})
        small = TensorData(info, {"test": (images[:64], labels[:64])})
        torch.manual_seed(0)
        net = SmallCNN(1, 10) if model == "small_cnn" else linear_model()
        return (
            lambda: embed(net, data, "test", batch_size=batch_size),
            lambda: embed(net, small, "test"),
        )
    centres = 3.0 * torch.randn(10, 128, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    latent = torch.randn(n, 128, generator=generator).add_(centres[labels])
    return (
        lambda: silhouette_score(latent, labels),
        lambda: silhouette_score(latent[:200], labels[:200]),
    )


def measure(what: str, n: int, model: str, batch_size: int, threads: int) -> dict:
    call, warm_up = prepare(what, n, model, batch_size)
    warm_up()
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # VmHWM := VmRSS
    before = status_bytes("VmRSS")
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    return {
        "what": what,
        "n": n,
        "model": model if what == "embed" else None,
        "batch_size": batch_size if what == "embed" else None,
        "threads": threads,
        "peak_mib": round((status_bytes("VmHWM") - before) / 2**20, 1),
        "seconds": round(seconds, 2),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jobs", nargs="+", help="pairs WHAT N: embed 60000 silhouette 20000")
    parser.add_argument("--model", choices=("small_cnn", "linear"), default="linear")
    parser.add_argument("--batch-size", type=int, default=1024, help="embed's batch_size")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    pairs = list(zip(args.jobs[::2], args.jobs[1::2], strict=False))
    if len(args.jobs) % 2 or any(what not in ("embed", "silhouette") for what, _ in pairs):
        parser.error("jobs must be pairs WHAT N with WHAT embed or silhouette")
    torch.set_num_threads(args.threads)
    sys.stdout.flush()
    for what, n in pairs:
        child = os.fork()
        if child == 0:  # the child measures, prints and leaves without running any cleanup
            code = 0
            try:
                result = measure(what, int(n), args.model, args.batch_size, args.threads)
                print(json.dumps(result), flush=True)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(child, 0)
        if status != 0:
            raise SystemExit(f"the measurement of {what} {n} failed")


if __name__ == "__main__":
    main()
