"""kNN OOD score: latentboost_lab (torch, chunked) against scikit-learn's NearestNeighbors, on
the same arrays, in one run.

    python benchmarks/bench_ood_knn.py --threads 1 --out benchmarks/results/
    python benchmarks/bench_ood_knn.py --bank 2000 --queries 500 --out /tmp/knn   # seconds

What is measured: the score of Sun et al. (ICML 2022), the distance of each L2-normalised query
latent to its k-th nearest L2-normalised bank latent, for ``--queries`` test latents (10,000)
against a ``--bank`` of training latents (60,000, the whole Fashion-MNIST training split) of
width ``--dim`` (128, SmallCNN's latent), k = ``--k`` (50, Sun et al.'s choice for CIFAR-10).
Both sides get the same float32 arrays, already normalised (``latentboost_lab.ood.scores.normalize_rows``);
scikit-learn fits ``NearestNeighbors(n_neighbors=k, algorithm="brute")`` on the bank (brute force
is what its ``"auto"`` picks at this width, and what pytorch-ood's ``KNN`` detector calls) and
calls ``kneighbors``; ours calls ``latentboost_lab.ood.knn(..., normalized_bank=True)``. Each
side runs **once** (scikit-learn takes a while at this size), each in a fresh Python process
that builds the arrays, makes a warm-up call on 200 x 2,000 points (one-off library buffers are
not the call's memory), resets its peak resident memory (Linux ``/proc/self/clear_refs``) and
reports the call's wall time, CPU time and its peak memory (``VmHWM`` after the call minus
``VmRSS`` before it; torch's allocator is invisible to ``tracemalloc``). The two runs' k-th
distances are compared (largest absolute difference). Threads: ``--threads`` for torch and,
through threadpoolctl, for scikit-learn's BLAS and OpenMP.

The same way, two more fresh processes measure :class:`latentboost_lab.ood.OODScorer` with every
default score on the same arrays (the bank as training latents with 10 class labels, 10-class
logits made by a random linear head): the peak memory and time of ``fit_latents`` on the bank,
and of ``score_latents`` on the queries (after a fit that is not measured). These are the
figures quoted in the ``OODScorer`` docstring.

Data: float32 Gaussian clusters (10, unit spread, centres with standard deviation 3), like a
classifier's latents; the queries come from the same clusters, half of them shifted by 4 (a
stand-in for OOD latents). Writes ``bench_ood_knn.json`` and ``bench_ood_knn.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from latentboost_lab.ood.scores import knn, normalize_rows  # noqa: E402


def make_arrays(bank: int, queries: int, dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(10, dim, generator=g)
    bank_x = centres[torch.randint(0, 10, (bank,), generator=g)] + torch.randn(
        bank, dim, generator=g
    )
    query_x = centres[torch.randint(0, 10, (queries,), generator=g)] + torch.randn(
        queries, dim, generator=g
    )
    query_x[: queries // 2] += 4.0
    return normalize_rows(bank_x).contiguous(), normalize_rows(query_x).contiguous()


def labels_and_logits(bank, queries):
    g = torch.Generator().manual_seed(2)
    head = torch.randn(bank.shape[1], 10, generator=g)
    return (bank @ head).argmax(dim=1), queries @ head


def run_ours(bank, queries, k):
    return -knn(queries, bank, k, normalized_bank=True).numpy()


def run_sklearn(bank, queries, k):
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(bank.numpy())
    distances, _ = index.kneighbors(queries.numpy())
    return distances[:, -1]


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def child(impl: str, args) -> None:
    """In a fresh process: one warm-up call, then one measured call; prints a JSON line."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        bank, queries = make_arrays(args.bank, args.queries, args.dim)
        small_bank, small_queries = make_arrays(2000, 200, args.dim, seed=1)
        if impl.startswith("scorer"):
            from latentboost_lab.ood import OODScorer

            labels, logits = labels_and_logits(bank, queries)
            small_labels, small_logits = labels_and_logits(small_bank, small_queries)
            OODScorer(k=args.k).fit_latents(small_bank, small_labels).score_latents(
                small_queries, small_logits
            )
            if impl == "scorer_fit":

                def run(*_):
                    OODScorer(k=args.k).fit_latents(bank, labels)
                    return np.zeros(0)
            else:
                scorer = OODScorer(k=args.k).fit_latents(bank, labels)

                def run(*_):
                    scorer.score_latents(queries, logits)
                    return np.zeros(0)
        else:
            run = run_ours if impl == "ours" else run_sklearn
            run(small_bank, small_queries, min(args.k, 2000))
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # VmHWM := VmRSS
        before = _status_bytes("VmRSS")
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        kth = run(bank, queries, args.k)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        peak = max(_status_bytes("VmHWM") - before, 0)
    np.save(args.result, np.asarray(kth, dtype=np.float64))
    print(
        json.dumps(
            {
                "impl": impl,
                "seconds": seconds,
                "cpu_seconds": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime),
                "peak_mib": peak / 2**20,
            }
        )
    )


def measure(impl: str, args, scratch: Path) -> tuple[dict, np.ndarray]:
    result = scratch / f"{impl}.npy"
    command = [sys.executable, __file__, "--_child", impl, "--_result", str(result)]
    command += ["--bank", str(args.bank), "--queries", str(args.queries), "--dim", str(args.dim)]
    command += ["--k", str(args.k), "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {impl} run failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1]), np.load(result)


def markdown(report: dict) -> str:
    s, o = report["sklearn"], report["ours"]
    return "\n".join(
        [
            "# kNN OOD score: latentboost_lab against scikit-learn",
            "",
            f"`{report['command']}`",
            "",
            f"{report['queries']:,} query latents against a bank of {report['bank']:,} x "
            f"{report['dim']} float32 latents (L2-normalised), k = {report['k']}; one run of "
            f"each, in fresh processes; {report['threads']} thread(s); CPU "
            f"{report['processor']} ({report['cpu_count']} cores); load average "
            f"{report['load_average'][0]:.1f} at the start, {report['load_average'][1]:.1f} at "
            f"the end; torch {report['torch']}, scikit-learn {report['sklearn_version']}; "
            f"{report['date']}.",
            "",
            "| implementation | wall time (s) | CPU time (s) | peak memory of the call (MiB) |",
            "|---|---:|---:|---:|",
            f"| latentboost_lab `ood.knn` | {o['seconds']:.2f} | {o['cpu_seconds']:.2f} "
            f"| {o['peak_mib']:.0f} |",
            f"| scikit-learn `NearestNeighbors(algorithm='brute')` | {s['seconds']:.2f} "
            f"| {s['cpu_seconds']:.2f} | {s['peak_mib']:.0f} |",
            "",
            f"Speed-up (scikit-learn's wall time / ours): **{report['ratio']:.1f}x**; memory: "
            f"{o['peak_mib']:.0f} MiB against {s['peak_mib']:.0f} MiB. The k-th distances agree "
            f"to {report['max_abs_difference']:.1e} (largest absolute difference). One run "
            "each: on a shared machine a single timing can move by 10-20%.",
            "",
            f"`OODScorer` with every default score on the same arrays (bank as training "
            f"latents, 10 classes): `fit_latents` {report['scorer_fit']['seconds']:.2f} s, "
            f"peak {report['scorer_fit']['peak_mib']:.0f} MiB; `score_latents` of the "
            f"{report['queries']:,} queries {report['scorer_score']['seconds']:.2f} s, peak "
            f"{report['scorer_score']['peak_mib']:.0f} MiB (the kNN block is at most 8 MiB, the default `block_bytes`).",
            "",
        ]
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bank", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON and Markdown")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        args.result = args._result
        child(args._child, args)
        return
    import sklearn

    command = "python benchmarks/bench_ood_knn.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_ood_knn_") as scratch:
        ours, ours_kth = measure("ours", args, Path(scratch))
        theirs, their_kth = measure("sklearn", args, Path(scratch))
        scorer_fit, _ = measure("scorer_fit", args, Path(scratch))
        scorer_score, _ = measure("scorer_score", args, Path(scratch))
    report = {
        "command": command.strip(),
        "bank": args.bank,
        "queries": args.queries,
        "dim": args.dim,
        "k": args.k,
        "threads": args.threads,
        "ours": ours,
        "sklearn": theirs,
        "scorer_fit": scorer_fit,
        "scorer_score": scorer_score,
        "ratio": theirs["seconds"] / ours["seconds"],
        "max_abs_difference": float(np.abs(ours_kth - their_kth).max()),
        "torch": torch.__version__,
        "sklearn_version": sklearn.__version__,
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": [load_start, os.getloadavg()[0]],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    text = markdown(report)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_ood_knn.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / "bench_ood_knn.md").write_text(text)


if __name__ == "__main__":
    main()
