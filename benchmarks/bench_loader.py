"""On-device loader vs torchvision's DataLoader, on Fashion-MNIST.

    LATENTBOOST_DATA=../shared/data python benchmarks/bench_loader.py [--repeats 3] [--threads 1]

Measures, in one run and interleaved (so that a noisy machine hits both alike):
1. the data part alone: one epoch of normalised training batches (batch 256) from
   ``TensorData.batches`` vs ``DataLoader(FashionMNIST(transform=ToTensor+Normalize))``;
2. a whole training epoch of SmallCNN (forward, backward, Adam) fed by each.
Prints medians and ratios; ``--json PATH`` writes them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def _fashion_loader(scratch: Path, batch_size: int, workers: int):
    """torchvision's ``FashionMNIST(transform=ToTensor+Normalize)`` over the unpacked idx files
    in ``scratch/FashionMNIST/raw``, in a shuffling ``DataLoader``."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))]
    )
    dataset = datasets.FashionMNIST(str(scratch), train=True, download=False, transform=transform)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


def torchvision_loader(raw_dir: Path, batch_size: int, workers: int):
    """The DataLoader over the official files in ``raw_dir``, and the scratch folder to delete."""
    # torchvision wants the unpacked files beside the .gz ones: give it a scratch copy (data dirs
    # are read-only).
    scratch = Path(tempfile.mkdtemp(prefix="lb_bench_"))
    (scratch / "FashionMNIST" / "raw").mkdir(parents=True)
    for f in raw_dir.glob("*.gz"):  # torchvision reads the unpacked files
        with (
            gzip.open(f, "rb") as packed,
            open(scratch / "FashionMNIST" / "raw" / f.stem, "wb") as out,
        ):
            shutil.copyfileobj(packed, out)
    return _fashion_loader(scratch, batch_size, workers), scratch


def _write_idx(path: Path, array) -> None:
    """An uncompressed idx file of unsigned bytes (the MNIST format) holding ``array``."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    path.write_bytes(header + array.astype("uint8").tobytes())


def torchvision_loader_from_arrays(x, y, batch_size: int, workers: int):
    """The same DataLoader over given uint8 images ``x`` (N, 1, 28, 28) and labels ``y``: they
    are written as Fashion-MNIST's unpacked idx files (the test split too, which torchvision
    checks for but this loader never reads) into a scratch folder, returned for deletion.
    Lets the benchmark run on a subset, or on synthetic images where the data are absent."""
    x = x.reshape(-1, 28, 28).numpy() if torch.is_tensor(x) else x.reshape(-1, 28, 28)
    y = y.numpy() if torch.is_tensor(y) else y
    scratch = Path(tempfile.mkdtemp(prefix="lb_bench_"))
    raw = scratch / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return _fashion_loader(scratch, batch_size, workers), scratch


def time_data_epoch(batches, device=None) -> float:
    """Seconds to draw every batch of ``batches`` (pairs ``(x, y)``) and touch it, as a model
    would; with ``device``, each batch is first moved there (what a CPU-side loader costs a GPU
    user), and the time includes waiting for the device."""
    started = time.perf_counter()
    for x, _ in batches:
        if device is not None:
            x = x.to(device)
        x.sum()  # touch the batch, as a model would
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def time_train_epoch(model, optimizer, batches, limit: int | None) -> float:
    started = time.perf_counter()
    for step, (x, y) in enumerate(batches):
        if limit is not None and step == limit:
            break
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def measure(data, loader, batch_size: int, repeats: int, train_steps: int = 0, device=None):
    """Seconds per epoch of each loader, interleaved within each of ``repeats`` repetitions:
    ``{"ours_data": [...], "tv_data": [...]}`` for the data part alone (``data`` a
    ``TensorData``, ``loader`` a DataLoader over the same training split) and, when
    ``train_steps`` > 0, ``ours_train``/``tv_train``: a SmallCNN training epoch timed over
    ``train_steps`` steps and scaled to the epoch's length."""
    from latentboost_lab import SmallCNN

    n_batches = len(loader)
    times = {"ours_data": [], "tv_data": []}
    if train_steps:
        times |= {"ours_train": [], "tv_train": []}
    for repeat in range(repeats):
        ours = ((b.x, b.y) for b in data.batches("train", batch_size, epoch=repeat))
        times["ours_data"].append(time_data_epoch(ours, device))
        times["tv_data"].append(time_data_epoch(loader, device))
        if not train_steps:
            continue
        for key, source in (("ours_train", "ours"), ("tv_train", "torchvision")):
            torch.manual_seed(0)
            model = SmallCNN(1, 10)
            optimizer = torch.optim.Adam(model.parameters(), 1e-3)
            batches = (
                ((b.x, b.y) for b in data.batches("train", batch_size, epoch=repeat))
                if source == "ours"
                else iter(loader)
            )
            seconds = time_train_epoch(model, optimizer, batches, train_steps)
            times[key].append(seconds * n_batches / train_steps)  # scaled to a whole epoch
    return times


def main() -> None:
    from latentboost_lab import load_dataset
    from latentboost_lab.data import find_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--workers", type=int, default=0, help="DataLoader workers (0: in the main process)"
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=60,
        help="training steps timed per whole-epoch measurement (scaled to an epoch)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice); on a busy 2-core machine 1 avoids "
        "OpenMP hand-offs that make small tensor operations slow",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    raw, _ = find_files("fashion_mnist", os.environ.get("LATENTBOOST_DATA"))
    if raw is None or raw.suffix == ".npz":
        raise SystemExit("needs the Fashion-MNIST idx files: set LATENTBOOST_DATA")
    data = load_dataset(
        "fashion_mnist", root=os.environ.get("LATENTBOOST_DATA"), val_size=0, download=False
    )
    loader, scratch = torchvision_loader(raw, args.batch_size, args.workers)
    try:
        times = measure(data, loader, args.batch_size, args.repeats, args.train_steps)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "workers": args.workers,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average": os.getloadavg()[0],
        **med,
        "data_speedup": med["tv_data"] / med["ours_data"],
        "train_epoch_speedup": med["tv_train"] / med["ours_train"],
    }
    print(
        f"Fashion-MNIST train split (60,000 images), batch {args.batch_size}, median of {args.repeats}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| what | on-device loader | torchvision DataLoader | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| one epoch of normalised batches | {med['ours_data']:.2f} s | {med['tv_data']:.2f} s "
        f"| {result['data_speedup']:.1f}x |"
    )
    print(
        f"| one SmallCNN training epoch (from {args.train_steps} steps) | {med['ours_train']:.1f} s "
        f"| {med['tv_train']:.1f} s | {result['train_epoch_speedup']:.2f}x |"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
