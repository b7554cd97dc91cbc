"""One epoch of SmallCNN on the whole Fashion-MNIST, before and after issue 20's defaults.

    LATENTBOOST_DATA=../shared/data python benchmarks/bench_epoch.py --out benchmarks/results/
    python benchmarks/bench_epoch.py --out /tmp/epoch --n-train 5000 --rounds 1   # a quick look

Each setting trains one epoch of :func:`latentboost_lab.training.fit` (cross-entropy and Latent
Boost, batch 128, ``eval_test=False``; 54,000 training images, the 6,000 validation images
evaluated after it) in a fresh process, and reports the record's ``train_seconds`` (the
epoch's steps) and ``seconds`` (with the validation pass). Settings, as
``FORMAT:THREADS[:passive]``:

- ``contiguous:1``, ``contiguous:2``: NCHW, as ``fit`` trained before issue 20, on 1 and 2
  torch threads (2 is torch's default on this machine);
- ``channels_last:1``, ``channels_last:2:passive``: the layout ``fit`` now picks for SmallCNN on
  the CPU, on 1 thread and on 2 with ``OMP_WAIT_POLICY=PASSIVE`` (set before torch starts, as
  the command line does; see ``bench_threads.py``).

The settings alternate within every round (rotated order) so that a drift in the machine's
load hits them alike; each figure is a median over the rounds. Data: Fashion-MNIST from
``$LATENTBOOST_DATA`` (or ``--root``); without it the script stops with the places it looked.

Writes ``bench_epoch.json`` (every epoch's seconds, the settings, the provenance and the load
average at the start and the end) and ``bench_epoch.md`` (the table, also printed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SETTINGS = "contiguous:1,contiguous:2,channels_last:1,channels_last:2:passive"
LOSSES = ("ce", "latentboost")


def worker(memory_format: str, threads: int, loss_name: str, n_train, root) -> dict:
    import torch

    from latentboost_lab.data import load_dataset
    from latentboost_lab.models import build_model
    from latentboost_lab.recipes import make_loss
    from latentboost_lab.training import fit

    torch.set_num_threads(threads)
    data = load_dataset("fashion_mnist", root=root, n_train=n_train, download=False, seed=0)
    torch.manual_seed(0)
    model = build_model("small_cnn", data.info)
    lam = 0.75 if loss_name == "latentboost" else None
    loss = make_loss(loss_name, num_classes=data.num_classes, lam=lam)
    history = fit(model, data, loss, epochs=1, batch_size=128, eval_test=False, progress=False,
                  channels_last=memory_format == "channels_last")  # fmt: skip
    record = history.epochs[0]
    return {k: record[k] for k in ("train_seconds", "seconds")} | {
        "memory_format": history.config["memory_format"],
        "threads": history.config["threads"],
        "wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def parse_setting(text: str) -> tuple[str, int, bool]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[0] not in ("contiguous", "channels_last"):
        raise SystemExit(f"--settings: FORMAT:THREADS[:passive], got {text!r}")
    return parts[0], int(parts[1]), len(parts) == 3 and parts[2] == "passive"


def run_worker(setting: str, loss: str, args) -> dict:
    memory_format, threads, passive = parse_setting(setting)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    command = [sys.executable, __file__, "--worker", memory_format, str(threads), loss,
               str(args.n_train or 0), args.root or ""]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the worker for {setting} {loss} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        fmt, threads, loss, n_train, root = sys.argv[2:7]
        print(json.dumps(worker(fmt, int(threads), loss, int(n_train) or None, root or None)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", default=DEFAULT_SETTINGS)
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--n-train", type=int, default=None, help="a stratified subset")
    parser.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    settings, losses = args.settings.split(","), args.losses.split(",")
    for setting in settings:
        parse_setting(setting)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_suite import load_average

    from latentboost_lab.provenance import provenance

    started, load_start = time.time(), load_average()
    epochs = {loss: {s: [] for s in settings} for loss in losses}
    for r in range(args.rounds):
        order = settings[r % len(settings) :] + settings[: r % len(settings)]
        for loss in losses:
            for setting in order:
                epochs[loss][setting].append(run_worker(setting, loss, args))
    record = {
        "command": "python benchmarks/bench_epoch.py " + shlex.join(argv or sys.argv[1:]),
        "n_train": args.n_train,
        "epochs": epochs,
        "load_start": load_start,
        "load_end": load_average(),
        "wall_seconds": time.time() - started,
        "provenance": provenance(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_epoch.json").write_text(json.dumps(record, indent=1))
    base = settings[0]
    lines = [
        f"SmallCNN, Fashion-MNIST ({args.n_train or 'all 54,000'} training images), batch 128, "
        f"one epoch, median over {args.rounds} rounds (`{record['command']}`; load average "
        f"{load_start['load_1min']:.2f} at the start, {record['load_end']['load_1min']:.2f} at "
        "the end)",
        "",
        f"| loss | setting | train seconds | with validation | vs {base} |",
        "|---|---|---:|---:|---:|",
    ]
    for loss in losses:
        base_median = statistics.median(e["train_seconds"] for e in epochs[loss][base])
        for setting in settings:
            train = statistics.median(e["train_seconds"] for e in epochs[loss][setting])
            total = statistics.median(e["seconds"] for e in epochs[loss][setting])
            lines.append(
                f"| {loss} | {setting} | {train:.1f} | {total:.1f} | {train / base_median:.2f} |"
            )
    text = "\n".join(lines) + "\n"
    (args.out / "bench_epoch.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
