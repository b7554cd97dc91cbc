"""How close one training step comes to the CPU's own float32 limit (issue 20's roofline figure).

    python benchmarks/bench_roofline.py --out benchmarks/results/
    python benchmarks/bench_roofline.py --out /tmp/roofline --models small_cnn --threads 1

For each model (SmallCNN on 1x28x28, VGG-11-BN and ResNet-18 on 3x32x32), batch size and
thread count, in one process:

- the step's floating-point work: the convolutions and linear layers of the forward and the
  backward pass (batch norm, ReLU, pooling, the loss and Adam are left out: they are memory
  bound and small in FLOPs), counted by ``torch.utils.flop_counter.FlopCounterMode`` on one
  forward + cross-entropy + backward (``tests/test_benchmarks.py`` checks the count against a
  hand count for a tiny conv + linear net; a multiply-add is 2 FLOPs);
- the step's time: :func:`latentboost_lab.training.train_step`, the step ``fit`` runs (forward,
  cross-entropy, backward, Adam), once with the model and the batch in contiguous NCHW (as
  ``fit`` runs today) and once with both in ``channels_last`` (the batch already stored so, as
  an on-device data set could keep it), each its own copy of the same model;
- the machine's float32 peak on the same threads: an ``n x n`` matmul (``2 n^3`` FLOPs), the
  median of 3 calls in each repetition.

The three (NCHW step, channels_last step, matmul) alternate within every repetition
(``bench_loss_step.interleave``: ABC, BCA, CAB, ...), so a change in the machine's load hits
them alike; every figure is a median over the repetitions, and every ratio compares figures of
the same configuration in the same run. Achieved GFLOP/s = step FLOPs / median step time; the
ratio to the peak divides it by the matmul's median GFLOP/s of the same repetitions.

Writes ``bench_roofline.json`` (every raw time, the FLOP counts, the settings, the provenance and
``uptime``'s load average at the start and the end) and ``bench_roofline.md`` (the table,
also printed).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_latent_width import random_batch_and_model  # noqa: E402
from bench_loss_step import interleave  # noqa: E402
from bench_suite import load_average  # noqa: E402

from latentboost_lab.losses import CrossEntropyLoss, as_objective  # noqa: E402
from latentboost_lab.models import MODELS  # noqa: E402
from latentboost_lab.provenance import provenance  # noqa: E402
from latentboost_lab.training import train_step  # noqa: E402

FORMATS = ("nchw", "channels_last")
# VGG-11-BN and ResNet-18 steps take seconds on one CPU thread: fewer repetitions for them.
LARGE_MODELS = ("vgg11_bn", "resnet18")


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """FLOPs of one forward + cross-entropy + backward of ``model`` on ``(x, y)``, as
    ``FlopCounterMode`` counts them (convolutions and matrix products; 2 per multiply-add):
    ``{"total": int, "by_op": {op name: int}}``. The gradients it leaves are cleared."""
    counter = FlopCounterMode(display=False)
    with counter:
        logits = model(x)
        logits = logits[0] if isinstance(logits, tuple) else logits
        F.cross_entropy(logits, y).backward()
    model.zero_grad(set_to_none=True)
    by_op = {}
    for op, flops in counter.get_flop_counts()["Global"].items():
        name = getattr(op, "__name__", str(op))
        by_op[name] = by_op.get(name, 0) + int(flops)
    return {"total": int(counter.get_total_flops()), "by_op": by_op}


def make_train_step(model, x: torch.Tensor, y: torch.Tensor):
    """A function that runs one ``train_step`` (cross-entropy, Adam) of ``model`` on ``(x, y)``
    and returns its wall-clock seconds."""
    objective = as_objective(CrossEntropyLoss())
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = SimpleNamespace(x=x, y=y, index=torch.arange(len(y)))

    def step() -> float:
        start = time.perf_counter()
        train_step(model, objective, optimiser, batch, 0)
        return time.perf_counter() - start

    return step


def make_matmul(size: int, calls: int = 3):
    """A function that multiplies two ``size x size`` float32 matrices (``2 size^3`` FLOPs)
    ``calls`` times and returns the median seconds of one call: several samples per
    repetition, because one call is short against a step and a busy machine's bursts hit it."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g)
    b = torch.randn(size, size, generator=g)
    out = torch.empty(size, size)

    def matmul() -> float:
        seconds = []
        for _ in range(calls):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            seconds.append(time.perf_counter() - start)
        return statistics.median(seconds)

    return matmul


def measure(model_name: str, batch_size: int, reps: int, warmup: int, matmul_size: int) -> dict:
    """One configuration on the current thread count: the FLOP count, then NCHW step,
    channels_last step and matmul interleaved over ``warmup + reps`` repetitions."""
    x, y, base = random_batch_and_model(model_name, batch_size)
    flops = step_flops(copy.deepcopy(base), x, y)
    nchw = copy.deepcopy(base)
    last = copy.deepcopy(base).to(memory_format=torch.channels_last)
    steps = {
        "nchw": make_train_step(nchw, x, y),
        "channels_last": make_train_step(last, x.contiguous(memory_format=torch.channels_last), y),
        "matmul": make_matmul(matmul_size),
    }
    times = interleave(steps, reps, warmup)
    median = {name: statistics.median(values) for name, values in times.items()}
    peak = 2 * matmul_size**3 / median["matmul"] / 1e9
    formats = {}
    for name in FORMATS:
        achieved = flops["total"] / median[name] / 1e9
        formats[name] = {
            "median_s": median[name],
            "gflops": achieved,
            "ratio_to_peak": achieved / peak,
        }
    return {
        "model": model_name,
        "image_shape": list(x.shape[1:]),
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "reps": reps,
        "warmup": warmup,
        "flops": flops,
        "peak_gflops": peak,
        "formats": formats,
        "channels_last_over_nchw": {
            "ratio_of_medians": median["channels_last"] / median["nchw"],
            "median_paired_ratio": statistics.median(
                c / n for c, n in zip(times["channels_last"], times["nchw"], strict=True)
            ),
        },
        "times_s": times,
    }


LABEL = {"small_cnn": "SmallCNN", "vgg11_bn": "VGG-11-BN", "resnet18": "ResNet-18"}


def markdown(result: dict) -> str:
    env, where = result["environment"], result["environment"]["provenance"]

    def load(snapshot):
        return "unknown" if snapshot["load_1min"] is None else f"{snapshot['load_1min']:.2f}"

    lines = [
        "# Roofline: one training step against the CPU's own float32 matmul",
        "",
        f"`{result['command']}`",
        "",
        f"{where['cpu']}, {where['cpu_count']} CPUs, torch {where['torch']}, commit "
        f"{where['git']}; {result['seconds']:.0f} s. Load average (1 min) "
        f"{load(env['load_start'])} at the start, {load(env['load_end'])} at the end "
        f"(`{env['load_start']['uptime']}` / `{env['load_end']['uptime']}`).",
        "",
        "Step: forward, cross-entropy, backward, Adam (`train_step`), random images. FLOPs: "
        "convolutions and linear layers, forward + backward (FlopCounterMode). Peak: a "
        f"{result['settings']['matmul_size']}^2 float32 matmul on the same threads (median of 3 "
        "calls per repetition), interleaved with the steps. Medians over the repetitions "
        "after warm-up (`reps` column); "
        "channels_last / NCHW is the ratio of the two medians (< 1: channels_last faster), "
        "with the median of the per-repetition ratios in brackets.",
        "",
        "| model | batch | threads | reps | GFLOP per step | peak GFLOP/s | NCHW ms | NCHW GFLOP/s "
        "| NCHW / peak | channels_last ms | channels_last GFLOP/s | channels_last / peak "
        "| channels_last / NCHW |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        n, c = row["formats"]["nchw"], row["formats"]["channels_last"]
        ratio = row["channels_last_over_nchw"]
        lines.append(
            f"| {LABEL.get(row['model'], row['model'])} | {row['batch_size']} | {row['threads']} "
            f"| {row['reps']} | {row['flops']['total'] / 1e9:.2f} | {row['peak_gflops']:.1f} "
            f"| {1e3 * n['median_s']:.1f} | {n['gflops']:.1f} | {100 * n['ratio_to_peak']:.1f}% "
            f"| {1e3 * c['median_s']:.1f} | {c['gflops']:.1f} | {100 * c['ratio_to_peak']:.1f}% "
            f"| {ratio['ratio_of_medians']:.2f} ({ratio['median_paired_ratio']:.2f}) |"
        )
    return "\n".join(lines) + "\n"


def _positive_ints(option: str):
    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            raise argparse.ArgumentTypeError(
                f"{option} takes positive integers separated by commas, got {text!r}"
            )
        return values

    return parse


def _models(text: str) -> list[str]:
    names = text.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"--models takes names from {sorted(MODELS)} separated by commas, got {unknown}"
        )
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and .md")
    parser.add_argument("--models", type=_models, default=["small_cnn", *LARGE_MODELS])
    parser.add_argument("--batch-sizes", type=_positive_ints("--batch-sizes"), default=[128, 256])
    parser.add_argument("--threads", type=_positive_ints("--threads"), default=[1, 2])
    parser.add_argument("--reps", type=_positive_ints("--reps"), default=[5],
                        help="timed repetitions for SmallCNN (default 5)")  # fmt: skip
    parser.add_argument("--reps-large", type=_positive_ints("--reps-large"), default=[2],
                        help="timed repetitions for VGG-11-BN and ResNet-18 (default 2)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1, help="untimed repetitions first")
    parser.add_argument("--matmul-size", type=_positive_ints("--matmul-size"), default=[1024])
    args = parser.parse_args(argv)
    if args.warmup < 0:
        parser.error(f"--warmup must be 0 or more, got {args.warmup}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(
        ["python", "benchmarks/bench_roofline.py", *(sys.argv[1:] if argv is None else argv)]
    )
    settings = {
        "models": args.models,
        "batch_sizes": args.batch_sizes,
        "threads": args.threads,
        "reps": args.reps[0],
        "reps_large": args.reps_large[0],
        "warmup": args.warmup,
        "matmul_size": args.matmul_size[0],
    }
    result = {
        "command": command,
        "settings": settings,
        "environment": {"load_start": load_average()},
        "rows": [],
    }
    started = time.perf_counter()
    before = torch.get_num_threads()
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            if "provenance" not in result["environment"]:
                result["environment"]["provenance"] = provenance("cpu")
            for model_name in args.models:
                reps = settings["reps_large" if model_name in LARGE_MODELS else "reps"]
                for batch_size in args.batch_sizes:
                    print(f"[{time.strftime('%H:%M:%S')}] {model_name}, batch {batch_size}, "
                          f"{threads} thread(s)", file=sys.stderr, flush=True)  # fmt: skip
                    result["rows"].append(
                        measure(model_name, batch_size, reps, args.warmup, settings["matmul_size"])
                    )
    finally:
        torch.set_num_threads(before)
    result["seconds"] = time.perf_counter() - started
    result["environment"]["load_end"] = load_average()
    result["environment"]["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    (args.out / "bench_roofline.json").write_text(json.dumps(result, indent=1) + "\n")
    summary = markdown(result)
    (args.out / "bench_roofline.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
