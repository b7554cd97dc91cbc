"""Do 2 CPU threads collapse when another process shares the cores? (issue 20)

    python benchmarks/bench_threads.py --out benchmarks/results/
    python benchmarks/bench_threads.py --out /tmp/threads --rounds 1 --steps 4   # a quick look

A student's laptop runs a browser beside the notebook's kernel; this project's studies run two
comparisons on two cores. With OpenMP's default wait policy a thread that reaches a barrier
spins, and when the cores are shared a spinning thread holds a core that the other thread needs
to finish its part: a step on 2 threads can then be many times slower than on one.

For each scenario (``idle``: nothing else running; ``neighbour``: one busy-looping process at
normal priority, a core's worth of someone else's work) and each setting of the threads
(1 thread; 2 threads; 2 threads with ``OMP_WAIT_POLICY=PASSIVE``, where a waiting thread sleeps
instead of spinning; the policy is read when OpenMP starts, so each setting runs in its own
process), a worker process times :func:`latentboost_lab.training.train_step` of SmallCNN on a
Fashion-MNIST-shaped batch of 128 (cross-entropy, and Latent Boost with its batch PCA, whose
many small operations suffer most), in the memory format ``fit`` uses on the CPU
(``--memory-format``). The settings alternate within every round (rotated order), so a drift in
the machine's load hits them alike; each figure is the median of every step of every round.

Writes ``bench_threads.json`` (every step's time, the settings, the provenance and ``uptime``'s
load average at the start and the end) and ``bench_threads.md`` (the table, also printed).
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

SETTINGS = {  # name: (torch threads, extra environment)
    "1 thread": (1, {}),
    "2 threads": (2, {}),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
}
LOSSES = ("cross-entropy", "latentboost")
BUSY_LOOP = "import time\nwhile True:\n    time.perf_counter()\n"


def worker(threads: int, loss_name: str, memory_format: str, steps: int, warmup: int) -> list:
    """Seconds of ``steps`` train_steps after ``warmup`` untimed ones, in this process."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_latent_width import random_batch_and_model

    from latentboost_lab.losses import CrossEntropyLoss, LatentBoostLoss, as_objective
    from latentboost_lab.training import train_step

    torch.set_num_threads(threads)
    x, y, model = random_batch_and_model("small_cnn", 128)
    if memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    loss = CrossEntropyLoss() if loss_name == "cross-entropy" else LatentBoostLoss(lam=0.75)
    objective = as_objective(loss)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    from types import SimpleNamespace

    batch = SimpleNamespace(x=x, y=y, index=torch.arange(len(y)))
    seconds = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        train_step(model, objective, optimiser, batch, 0)
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def run_worker(setting: str, loss_name: str, args) -> list:
    threads, extra = SETTINGS[setting]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(extra)
    command = [sys.executable, __file__, "--worker", str(threads), loss_name,
               args.memory_format, str(args.steps), str(args.warmup)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args) -> dict:
    names = list(SETTINGS)
    times = {scenario: {loss: {name: [] for name in names} for loss in args.losses}
             for scenario in args.scenarios}  # fmt: skip
    for scenario in args.scenarios:
        neighbour = None
        if scenario == "neighbour":
            neighbour = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
            time.sleep(1)
        try:
            for r in range(args.rounds):
                order = names[r % len(names) :] + names[: r % len(names)]
                for loss in args.losses:
                    for name in order:
                        times[scenario][loss][name] += run_worker(name, loss, args)
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
    return times


def table(times: dict) -> str:
    lines = [
        "| scenario | loss | " + " | ".join(f"{n}: ms" for n in SETTINGS) + " | 2 threads / 1 |",
        "|---|---|" + "---:|" * (len(SETTINGS) + 1),
    ]
    for scenario, by_loss in times.items():
        for loss, by_setting in by_loss.items():
            med = {n: statistics.median(v) * 1e3 for n, v in by_setting.items()}
            cells = " | ".join(f"{med[n]:,.0f}" for n in SETTINGS)
            lines.append(
                f"| {scenario} | {loss} | {cells} | {med['2 threads'] / med['1 thread']:.2f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        threads, loss, fmt, steps, warmup = sys.argv[2:7]
        print(json.dumps(worker(int(threads), loss, fmt, int(steps), int(warmup))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--memory-format", choices=("channels_last", "nchw"),
                        default="channels_last")  # fmt: skip
    parser.add_argument("--scenarios", default="idle,neighbour")
    parser.add_argument("--losses", default=",".join(LOSSES))
    args = parser.parse_args(argv)
    args.scenarios, args.losses = args.scenarios.split(","), args.losses.split(",")
    for name, values, allowed in (("--scenarios", args.scenarios, ("idle", "neighbour")),
                                  ("--losses", args.losses, LOSSES)):  # fmt: skip
        if not set(values) <= set(allowed):
            parser.error(f"{name} takes {', '.join(allowed)}, got {','.join(values)}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_suite import load_average

    from latentboost_lab.provenance import provenance

    started, load_start = time.time(), load_average()
    times = measure(args)
    record = {
        "command": "python benchmarks/bench_threads.py " + shlex.join(argv or sys.argv[1:]),
        "settings": {k: {"threads": t, "env": e} for k, (t, e) in SETTINGS.items()},
        "memory_format": args.memory_format,
        "batch_size": 128,
        "model": "small_cnn",
        "seconds": times,
        "load_start": load_start,
        "load_end": load_average(),
        "wall_seconds": time.time() - started,
        "provenance": provenance(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_threads.json").write_text(json.dumps(record, indent=1))
    text = (
        f"SmallCNN, batch 128, {args.memory_format}, median ms per train_step over "
        f"{args.rounds} rounds x {args.steps} steps (`{record['command']}`; load average "
        f"{load_start['load_1min']:.2f} at the start, {record['load_end']['load_1min']:.2f} at "
        "the end)\n\n" + table(times) + "\n"
    )
    (args.out / "bench_threads.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
