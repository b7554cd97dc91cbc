"""Silhouette score: latentboost_lab (torch) against scikit-learn, measured in the same run.

    python benchmarks/bench_silhouette.py                      # 2,000 / 10,000 / 60,000 x 128
    python benchmarks/bench_silhouette.py --sizes 2000,10000 --json silhouette.json

For each size: the median wall time of several repetitions of each implementation (the two
alternate, so that a busy machine slows both alike), their ratio, the absolute
difference between the two scores, the CPU time, and the peak memory of one call of each. scikit-learn takes
minutes at 60,000 points, so sizes of at least ``--large`` points are repeated
``--large-repeats`` times (default 1) instead of ``--repeats``.

Peak memory (CPU, Linux): each implementation runs once in a fresh Python process that first
builds the data and makes one warm-up call on 200 points, then resets its peak resident memory
(``/proc/self/clear_refs``) and reads ``VmHWM - VmRSS`` after the call: what the call itself
added at its peak. (Torch's CPU allocator is invisible to ``tracemalloc``; ``ru_maxrss`` cannot be
reset and, on Linux, a child process inherits its parent's.) On CUDA, torch's figure is
``torch.cuda.max_memory_allocated`` during the call.

Data: float32 Gaussian clusters (10 by default, unit spread, centres drawn with standard
deviation 3), like a classifier's latents.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import sklearn
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from latentboost_lab.metrics import silhouette_score  # noqa: E402
from latentboost_lab.provenance import cpu_name  # noqa: E402


def make_data(n: int, dim: int, clusters: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(clusters, dim, generator=generator)
    labels = torch.randint(0, clusters, (n,), generator=generator)
    x = torch.randn(n, dim, generator=generator).add_(centres[labels])
    return x, labels


def run_torch(x, labels, device, chunk_size):
    x, labels = x.to(device), labels.to(device)
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    return silhouette_score(x, labels, **kwargs)  # .item() inside: waits for the device


def run_sklearn(x, labels):
    from sklearn.metrics import silhouette_score as sk_silhouette_score

    return float(sk_silhouette_score(x.numpy(), labels.numpy()))


def _status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise OSError(f"{field} not in /proc/self/status")


def _reset_peak_resident() -> bool:
    """Reset this process's peak resident memory (VmHWM) to its current value (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def measure_memory_here(impl, n, dim, clusters, device, chunk_size) -> dict:
    """Run in a fresh process: peak memory added by one call."""
    x, labels = make_data(n, dim, clusters)
    if impl == "torch" and device != "cpu":
        x, labels = x.to(device), labels.to(device)
        torch.cuda.synchronize()
        run_torch(x[:200], labels[:200], device, chunk_size)  # warm-up: kernels, cuBLAS handles
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        started = time.perf_counter()
        score = run_torch(x, labels, device, chunk_size)
        return {
            "peak_bytes": torch.cuda.max_memory_allocated() - before,
            "method": "cuda allocator",
            "seconds": time.perf_counter() - started,
            "score": score,
        }
    # a warm-up call on 200 points first, so that one-off costs (library buffers, thread pools)
    # are not counted as the call's memory
    small_x, small_labels = make_data(200, dim, clusters, seed=1)
    if impl == "torch":
        run_torch(small_x, small_labels, device, chunk_size)
    else:
        run_sklearn(small_x, small_labels)
    if not _reset_peak_resident():
        raise SystemExit("peak memory needs Linux's /proc/self/clear_refs; use --no-memory")
    rss_before = _status_bytes("VmRSS")
    started = time.perf_counter()
    if impl == "torch":
        score = run_torch(x, labels, device, chunk_size)
    else:
        score = run_sklearn(x, labels)
    seconds = time.perf_counter() - started
    return {
        "peak_bytes": max(_status_bytes("VmHWM") - rss_before, 0),
        "method": "peak resident memory (VmHWM, reset before the call) - resident memory before",
        "seconds": seconds,
        "score": score,
    }


def measure_memory(
    impl, n, *, dim=128, clusters=10, device="cpu", chunk_size=None, threads=None
) -> dict:
    """Peak memory (and wall time, score) of one call of ``impl`` on ``n`` points, in a fresh
    Python process (see the module docstring); ``threads`` as ``--threads``."""
    command = [
        sys.executable,
        __file__,
        "--_memory",
        impl,
        "--sizes",
        str(n),
        "--dim",
        str(dim),
        "--clusters",
        str(clusters),
        "--device",
        device,
    ]
    if chunk_size is not None:
        command += ["--chunk-size", str(chunk_size)]
    if threads is not None:
        command += ["--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"the peak-memory run of {impl} at {n} points failed:\n{result.stderr.strip()}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_size(n, *, dim=128, clusters=10, repeats=5, device="cpu", chunk_size=None) -> dict:
    """Time both implementations on ``n`` points, alternating within each of ``repeats``
    repetitions; wall and CPU times (lists and medians), both scores and their difference."""
    x, labels = make_data(n, dim, clusters)
    times = {"torch": [], "sklearn": []}
    cpu_times = {"torch": [], "sklearn": []}
    scores = {}
    for _ in range(repeats):
        for impl in ("torch", "sklearn"):
            started, cpu_started = time.perf_counter(), time.process_time()
            if impl == "torch":
                scores[impl] = run_torch(x, labels, device, chunk_size)
            else:
                scores[impl] = run_sklearn(x, labels)
            times[impl].append(time.perf_counter() - started)
            cpu_times[impl].append(time.process_time() - cpu_started)
    row = {
        "n": n,
        "dim": dim,
        "clusters": clusters,
        "repeats": repeats,
        "torch_s": statistics.median(times["torch"]),
        "sklearn_s": statistics.median(times["sklearn"]),
        "torch_times_s": times["torch"],
        "sklearn_times_s": times["sklearn"],
        "torch_cpu_s": statistics.median(cpu_times["torch"]),
        "sklearn_cpu_s": statistics.median(cpu_times["sklearn"]),
        "torch_score": scores["torch"],
        "sklearn_score": scores["sklearn"],
        "abs_diff": abs(scores["torch"] - scores["sklearn"]),
    }
    row["speedup"] = row["sklearn_s"] / row["torch_s"]
    return row


def warm_up(dim=128, clusters=10, device="cpu", chunk_size=None) -> None:
    """One small call of each, so that first-call costs (imports, thread pools, kernels) are not
    timed."""
    warm_x, warm_labels = make_data(500, dim, clusters)
    run_torch(warm_x, warm_labels, device, chunk_size)
    run_sklearn(warm_x, warm_labels)


def benchmark(args) -> list[dict]:
    warm_up(args.dim, args.clusters, args.device, args.chunk_size)
    rows = []
    for n in args.sizes:
        repeats = args.large_repeats if n >= args.large else args.repeats
        row = measure_size(
            n,
            dim=args.dim,
            clusters=args.clusters,
            repeats=repeats,
            device=args.device,
            chunk_size=args.chunk_size,
        )
        if not args.no_memory:
            for impl in ("torch", "sklearn"):
                row[f"{impl}_memory"] = measure_memory(
                    impl,
                    n,
                    dim=args.dim,
                    clusters=args.clusters,
                    device=args.device,
                    chunk_size=args.chunk_size,
                    threads=args.threads,
                )
        rows.append(row)
        print(
            f"  n={n}: torch {row['torch_s']:.3f} s, scikit-learn {row['sklearn_s']:.3f} s",
            file=sys.stderr,
            flush=True,
        )
    return rows


@contextmanager
def threads_limited(threads: int | None):
    """torch.set_num_threads and threadpoolctl (scikit-learn's BLAS/OpenMP) set to ``threads``
    inside the block; None leaves each library's default."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        torch.set_num_threads(before)


def markdown(rows, args) -> str:
    mib = 2**20
    lines = [
        f"Silhouette score, float32, {args.clusters} clusters, device {args.device}; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"scikit-learn {sklearn.__version__} ({args.threads or 'default'} threads), {cpu_name()}, "
        f"chunk_size {args.chunk_size or 'default'}; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other processes slow both sides).",
        "",
        "| points x dims | repeats | torch s | scikit-learn s | speed-up | torch CPU s "
        "| scikit-learn CPU s | abs diff | torch peak MiB | scikit-learn peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        memory = [
            f"{r[f'{impl}_memory']['peak_bytes'] / mib:.0f}" if f"{impl}_memory" in r else "-"
            for impl in ("torch", "sklearn")
        ]
        lines.append(
            f"| {r['n']:,} x {r['dim']} | {r['repeats']} | {r['torch_s']:.3f} "
            f"| {r['sklearn_s']:.3f} | {r['speedup']:.1f}x | {r['torch_cpu_s']:.2f} "
            f"| {r['sklearn_cpu_s']:.2f} | {r['abs_diff']:.1e} | {memory[0]} | {memory[1]} |"
        )
    lines += [
        "",
        "s: wall-clock seconds, median over the repeats; CPU s: process CPU time (all threads, "
        "spin-waiting included), median; abs diff: |torch score - scikit-learn score|; "
        "peak MiB: memory one call adds at its peak, measured in a fresh process.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="2000,10000,60000",
        help="comma-separated numbers of points (default: 2000,10000,60000)",
    )
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions below --large points")
    parser.add_argument(
        "--large", type=int, default=30000, help="from this size on, --large-repeats"
    )
    parser.add_argument("--large-repeats", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=None, help="latentboost_lab's chunk_size")
    parser.add_argument(
        "--device", default="cpu", help="torch device for latentboost_lab (cpu, cuda)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for both sides (torch.set_num_threads and threadpoolctl "
        "for scikit-learn's BLAS/OpenMP); default: each library's own default",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--_memory", choices=("torch", "sklearn"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    with threads_limited(args.threads):
        if args._memory:
            result = measure_memory_here(
                args._memory, args.sizes[0], args.dim, args.clusters, args.device, args.chunk_size
            )
            print(json.dumps(result))
            return 0
        rows = benchmark(args)
    print(markdown(rows, args))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "torch": torch.__version__,
                    "rows": rows,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
