"""The performance suite: every speed figure of the project, measured side by side in one run.

    python benchmarks/bench_suite.py --out benchmarks/results/          # 12.5 min, loaded CPU
    python benchmarks/bench_suite.py --out /tmp/suite --skip-largest    # without 60,000 points
    python benchmarks/bench_suite.py --out /tmp/suite --smoke           # seconds: does it run?
    python benchmarks/bench_suite.py --out /tmp/suite --device cuda     # on a GPU

Sections (all in one process, one after the other; inside each, the things compared alternate
within every repetition, ABAB, so that a change in the machine's load hits them alike, and
every figure is a median over the repetitions or a ratio of such medians from the same run):

(a) steps: one training step (forward, loss, backward, Adam) of SmallCNN with each arm built by
    ``latentboost_lab.recipes.make_loss`` (ce, magnet, center, latentboost), and Latent Boost
    with its batch PCA off, on the same batches; the time of each relative to cross-entropy.
(b) PCA share of the Latent Boost step: the batch PCA call alone
    (``project_on_principal_components`` on the Latent Boost arm's latest latent, timed in the
    same repetitions) over the whole step, and the step with PCA on over PCA off.
(c) silhouette: ``latentboost_lab.metrics.silhouette_score`` against scikit-learn's at 2,000,
    10,000 and 60,000 points x 128 (time, agreement, peak memory of one call in a fresh process,
    as ``bench_silhouette.py`` measures it). From ``--silhouette-large`` points on, the timed call
    is the one in that fresh process (one call each: scikit-learn needs minutes there), so
    nothing is computed twice.
(d) loader: one epoch of normalised Fashion-MNIST training batches from ``TensorData.batches``
    against torchvision's ``DataLoader(FashionMNIST(transform=ToTensor+Normalize))``, as
    ``bench_loader.py``; the real images when ``$LATENTBOOST_DATA`` (or ``--data-root``) holds
    them, else random images of the same shape (the timing does not depend on the pixels).
(e) growth: (a) and (b) at each batch size (at the headline latent width) and each latent width
    (at the headline batch size); (c) at each latent width (at ``--silhouette-width-points``)
    besides its sizes in points.

Writes ``bench_suite.json`` (every raw timing, the medians, repeats, versions, threads, device,
the command, and ``uptime``'s load average at the start and the end) and ``bench_suite.md`` (the
summary, also printed) into ``--out``. Threads default to 1 (``torch.set_num_threads`` and
threadpoolctl for scikit-learn/NumPy): on a shared 2-core machine two threads hand work to each
other so badly that small operations become tens of times slower (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import functools
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling benchmark scripts
sys.path.insert(1, str(HERE.parent))  # a checkout, uninstalled

import bench_loader  # noqa: E402
import bench_loss_step  # noqa: E402
import bench_silhouette  # noqa: E402

from latentboost_lab._checks import comma_list, non_negative_int, positive_int  # noqa: E402
from latentboost_lab.provenance import provenance  # noqa: E402

ARMS = ("ce", "magnet", "center", "latentboost")
PCA_OFF = "latentboost_pca_off"

#: Settings of a full run and of ``--smoke``; an option given on the command line wins.
PRESETS = {
    "full": {
        "batch_sizes": [64, 128, 256],
        "latent_widths": [32, 128, 512],
        "batch_size": 256,
        "latent": 128,
        "reps": 20,
        "warmup": 3,
        "n_batches": 8,
        "silhouette_sizes": [2000, 10000, 60000],
        "silhouette_dim": 128,
        "silhouette_repeats": 5,
        "silhouette_large": 30000,
        "silhouette_widths": [32, 128, 512],
        "silhouette_width_points": 10000,
        "silhouette_width_repeats": 3,
        "loader_images": None,
        "loader_batch": 256,
        "loader_repeats": 3,
        "memory": True,
    },
    "smoke": {
        "batch_sizes": [8, 16],
        "latent_widths": [8, 16],
        "batch_size": 16,
        "latent": 16,
        "reps": 2,
        "warmup": 0,
        "n_batches": 2,
        "silhouette_sizes": [150, 300],
        "silhouette_dim": 16,
        "silhouette_repeats": 2,
        "silhouette_large": 300,
        "silhouette_widths": [8, 16],
        "silhouette_width_points": 150,
        "silhouette_width_repeats": 1,
        "loader_images": 512,
        "loader_batch": 128,
        "loader_repeats": 2,
        # a fresh Python process per memory figure costs seconds (minutes on a loaded machine)
        "memory": False,
    },
}


# ------------------------------------------------------------------------------------------
# The machine


def load_average() -> dict:
    """``uptime``'s line and the 1/5/15-minute load averages: how busy the machine was."""
    try:
        line = subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        line = ""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        one = five = fifteen = None
    return {
        "uptime": line.strip(),
        "load_1min": one,
        "load_5min": five,
        "load_15min": fifteen,
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def _provenance(env: dict) -> dict:
    """The run's :func:`latentboost_lab.provenance.provenance`; a JSON written before it existed
    (``versions`` and ``machine``) is read into the same keys."""
    if "provenance" in env:
        return env["provenance"]
    versions, machine = env["versions"], env["machine"]
    return {
        **{k.replace("-", "_"): v for k, v in versions.items()},
        "git": versions.get("git_commit"),
        "cpu": machine["cpu"],
        "cpu_count": machine["cpu_count"],
        "torch_threads": machine["torch_threads"],
        "device": machine["device"],
        "cuda": machine.get("gpu"),
    }


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# (a), (b), (e): training steps


@functools.lru_cache(maxsize=1)
def _real_fashion(root: str | None):
    """The real training split (uint8 images, labels) and its folder, or None where absent;
    looked for where ``load_dataset`` looks (``root``, $LATENTBOOST_DATA, the cache folder)."""
    from latentboost_lab.data import find_files, load_dataset

    found, _ = find_files("fashion_mnist", root)
    if found is None or found.suffix == ".npz":
        return None
    data = load_dataset("fashion_mnist", root=root, val_size=0, download=False, device="cpu")
    return (*data.split("train"), found)


def image_pool(count: int, root: str | None | bool, device: torch.device):
    """``count`` Fashion-MNIST training images (uint8) and labels, and where they come from:
    the real files when found (``root`` False: never), else random images of the same shape."""
    real = None if root is False else _real_fashion(root)
    if real is not None and count <= len(real[1]):
        x, y, found = real
        return x[:count].to(device), y[:count].to(device), f"real Fashion-MNIST ({found})"
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (count, 1, 28, 28), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (count,), generator=g)
    return x.to(device), y.to(device), "random uint8 images, Fashion-MNIST's shape"


def measure_steps(batch_size, latent, pool, settings, device) -> dict:
    """(a) and (b) for one batch size and latent width: per-step seconds of each arm, of Latent
    Boost with PCA off, and of the PCA call alone, interleaved over the repetitions."""
    from latentboost_lab.data.sources import DATASETS
    from latentboost_lab.losses.pca import project_on_principal_components
    from latentboost_lab.models import SmallCNN
    from latentboost_lab.recipes import make_loss

    x_pool, y_pool = pool
    info = DATASETS["fashion_mnist"]
    mean = torch.tensor(info.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(info.std, device=device).view(1, -1, 1, 1)
    batches = []
    for i in range(settings["n_batches"]):  # the same batches, in the same order, for every arm
        rows = slice(i * batch_size, (i + 1) * batch_size)
        batches.append(((x_pool[rows].float() / 255 - mean) / std, y_pool[rows]))

    torch.manual_seed(0)
    base = SmallCNN(1, info.num_classes, latent_dim=latent).to(device)
    shape = {"num_classes": info.num_classes, "dataset": "fashion_mnist"}
    losses = {name: make_loss(name, **shape, latent_dim=latent) for name in ARMS}
    losses[PCA_OFF] = make_loss("latentboost", **shape, pca_variance=None)
    last_latent = {}

    def arm_step(name, loss):
        model = copy.deepcopy(base).train()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss = loss.to(device)
        counter = iter(range(10**9))
        if name == "latentboost":  # the PCA step below times the projection of its latents
            model.register_forward_hook(
                lambda module, inputs, output: last_latent.update(z=output[1].detach())
            )

        def step():
            x, y = batches[next(counter) % len(batches)]
            return bench_loss_step.make_step(model, optimiser, loss, x, y, device)()

        return step

    steps = {name: arm_step(name, loss) for name, loss in losses.items()}
    threshold = losses["latentboost"].pca_variance

    def pca_step():
        z = last_latent["z"]
        bench_loss_step.sync(device)
        started = time.perf_counter()
        project_on_principal_components(z, threshold)
        bench_loss_step.sync(device)
        return time.perf_counter() - started

    # the PCA call goes last in the first repetition, so a latent exists by then
    steps["pca"] = pca_step
    times = bench_loss_step.interleave(steps, settings["reps"], settings["warmup"])
    medians = {name: statistics.median(values) for name, values in times.items()}
    lb, off, pca = times["latentboost"], times[PCA_OFF], times["pca"]
    return {
        "batch_size": batch_size,
        "latent": latent,
        "reps": settings["reps"],
        "warmup": settings["warmup"],
        "times_s": times,
        "median_s": medians,
        "ratio_to_ce": {
            name: bench_loss_step.ratios(times[name], times["ce"]) for name in (*ARMS, PCA_OFF)
        },
        "pca": {
            "call_share_of_step": medians["pca"] / medians["latentboost"],
            "call_share_paired": statistics.median(p / s for p, s in zip(pca, lb, strict=True)),
            "on_over_off": bench_loss_step.ratios(lb, off),
            "on_minus_off_share": (medians["latentboost"] - medians[PCA_OFF])
            / medians["latentboost"],
            "pca_variance": threshold,
        },
    }


def steps_section(settings, root, device) -> dict:
    headline = (settings["batch_size"], settings["latent"])
    configs = [(b, settings["latent"]) for b in settings["batch_sizes"]]
    configs += [(settings["batch_size"], w) for w in settings["latent_widths"]]
    configs = list(dict.fromkeys([headline, *configs]))  # the headline first, no repeats
    biggest = max(b for b, _ in configs)
    x, y, source = image_pool(biggest * settings["n_batches"], root, device)
    runs = []
    for batch_size, latent in configs:
        progress(f"steps: batch {batch_size}, latent {latent}")
        runs.append(measure_steps(batch_size, latent, (x, y), settings, device))
    return {
        "model": "SmallCNN (1x28x28 input, 10 classes), Adam lr 1e-3",
        "arms": {
            "ce": "make_loss('ce')",
            "magnet": "make_loss('magnet'): MagnetObjective, K=1; it trains the latent only (the "
            "classifier head gets no gradient); its per-epoch k-means refresh is not part of a "
            "step and is not timed",
            "center": "make_loss('center', latent_dim=...)",
            "latentboost": "make_loss('latentboost'): lam 0.75, PCA at 95% variance",
            PCA_OFF: "make_loss('latentboost', pca_variance=None)",
            "pca": "project_on_principal_components(latent of the latentboost arm, 0.95) alone",
        },
        "batches": f"{settings['n_batches']} fixed batches of {source}, cycled, the same for "
        "every arm",
        "order": "rotated by one place per repetition (each arm in each position equally often)",
        "headline": {"batch_size": headline[0], "latent": headline[1]},
        "runs": runs,
    }


# ------------------------------------------------------------------------------------------
# (c), (e): silhouette


def silhouette_row(n, dim, repeats, settings, device, threads, memory) -> dict:
    """One size: timed in this process over ``repeats`` alternating repetitions (below the
    large size), or once each in the fresh peak-memory processes (from it on)."""
    if memory and n >= settings["silhouette_large"]:
        calls = {}
        for impl in ("torch", "sklearn"):
            calls[impl] = bench_silhouette.measure_memory(
                impl, n, dim=dim, device=str(device), threads=threads
            )
        row = {
            "n": n,
            "dim": dim,
            "clusters": 10,
            "repeats": 1,
            "timed_in": "fresh process (the peak-memory run)",
            "torch_s": calls["torch"]["seconds"],
            "sklearn_s": calls["sklearn"]["seconds"],
            "torch_times_s": [calls["torch"]["seconds"]],
            "sklearn_times_s": [calls["sklearn"]["seconds"]],
            "torch_score": calls["torch"]["score"],
            "sklearn_score": calls["sklearn"]["score"],
            "abs_diff": abs(calls["torch"]["score"] - calls["sklearn"]["score"]),
            "torch_memory": calls["torch"],
            "sklearn_memory": calls["sklearn"],
        }
        row["speedup"] = row["sklearn_s"] / row["torch_s"]
        return row
    row = bench_silhouette.measure_size(n, dim=dim, repeats=repeats, device=str(device))
    row["timed_in"] = "this process"
    if memory:
        for impl in ("torch", "sklearn"):
            row[f"{impl}_memory"] = bench_silhouette.measure_memory(
                impl, n, dim=dim, device=str(device), threads=threads
            )
    return row


def silhouette_section(settings, device, threads) -> dict:
    dim = settings["silhouette_dim"]
    bench_silhouette.warm_up(dim, device=str(device))
    sizes = []
    for n in settings["silhouette_sizes"]:
        progress(f"silhouette: {n} points x {dim}")
        repeats = settings["silhouette_repeats"]
        sizes.append(silhouette_row(n, dim, repeats, settings, device, threads, settings["memory"]))
    widths = []
    points = settings["silhouette_width_points"]
    for width in settings["silhouette_widths"]:
        same = [r for r in sizes if r["n"] == points and r["dim"] == width]
        if same:  # measured above already
            widths.append(same[0])
            continue
        progress(f"silhouette: {points} points x {width}")
        bench_silhouette.warm_up(width, device=str(device))
        repeats = settings["silhouette_width_repeats"]
        widths.append(silhouette_row(points, width, repeats, settings, device, threads, False))
    return {
        "data": "float32 Gaussian clusters (10 clusters, unit spread, centres with std 3)",
        "memory": (
            "peak memory one call adds, in a fresh process (bench_silhouette.measure_memory)"
            if settings["memory"]
            else "not measured (--no-memory or --smoke)"
        ),
        "sizes": sizes,
        "widths": widths,
    }


# ------------------------------------------------------------------------------------------
# (d): loader


def loader_section(settings, root, device) -> dict:
    from latentboost_lab.data.sources import DATASETS
    from latentboost_lab.data.tensordata import TensorData

    count = settings["loader_images"] or 60000
    x, y, source = image_pool(count, root, torch.device("cpu"))
    data = TensorData(DATASETS["fashion_mnist"], {"train": (x, y)}, "bench_suite", device)
    loader, scratch = bench_loader.torchvision_loader_from_arrays(
        x, y, settings["loader_batch"], workers=0
    )
    progress(f"loader: {len(y)} images, batch {settings['loader_batch']}")
    try:
        move_to = device if device.type != "cpu" else None
        times = bench_loader.measure(
            data, loader, settings["loader_batch"], settings["loader_repeats"], device=move_to
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "images": len(y),
        "source": source,
        "batch_size": settings["loader_batch"],
        "repeats": settings["loader_repeats"],
        "workers": 0,
        "ours": f"TensorData.batches on {device} (shuffle, index, normalise)",
        "torchvision": "DataLoader(FashionMNIST(transform=ToTensor()+Normalize), shuffle=True, "
        "num_workers=0)" + (f", each batch moved to {device}" if device.type != "cpu" else ""),
        "times_s": times,
        "median_s": medians,
        "speedup": medians["tv_data"] / medians["ours_data"],
        "paired_speedup": statistics.median(
            t / o for t, o in zip(times["tv_data"], times["ours_data"], strict=True)
        ),
    }


# ------------------------------------------------------------------------------------------
# The summary


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.1f}"


def markdown(result: dict) -> str:
    """The summary: a header on the machine and its load, then one table per section run."""
    env = result["environment"]
    start, end, where = env["load_start"], env["load_end"], _provenance(env)
    lines = [
        "# Performance suite",
        "",
        f"Command: `{result['command']}`",
        "",
        f"{where['cpu']}, {where['cpu_count']} CPUs, "
        f"torch threads {where['torch_threads']}, device {where['device']}"
        + (f" ({where['cuda']})" if where.get("cuda") else "")
        + f"; torch {where['torch']}, scikit-learn {where['scikit_learn']}, "
        f"torchvision {where['torchvision']}, commit {where['git']}. "
        f"Load average (1 min) {_load(start)} at the start ({start['time']}) and "
        f"{_load(end)} at the end ({end['time']}); {result['seconds']:.0f} s in all. "
        "Other processes on the machine slow every side; compare the ratios, which were measured "
        "in the same run, not the absolute times.",
    ]
    sections = result["sections"]
    if "steps" in sections:
        lines += _steps_lines(sections["steps"])
    if "silhouette" in sections:
        lines += _silhouette_lines(sections["silhouette"], result["settings"])
    if "loader" in sections:
        lines += _loader_lines(sections["loader"])
    lines += [
        "",
        "Ratios > 1 in (a) and (e) mean slower than cross-entropy; speed-ups > 1 in (c) and (d) "
        "mean ours is faster. Every raw timing is in the JSON file beside this one.",
    ]
    return "\n".join(lines) + "\n"


def _quartiles(values: list[float], baseline: list[float]) -> tuple[float, float]:
    """First and third quartiles of the per-repetition ratios ``values / baseline``."""
    paired = [v / b for v, b in zip(values, baseline, strict=True)]
    if len(paired) < 2:
        return paired[0], paired[0]
    q1, _, q3 = statistics.quantiles(paired, n=4)
    return q1, q3


def _load(snapshot: dict) -> str:
    return "unknown" if snapshot["load_1min"] is None else f"{snapshot['load_1min']:.2f}"


def _steps_lines(steps: dict) -> list[str]:
    head = steps["runs"][0]
    lines = [
        "",
        f"## (a) Training-step time relative to cross-entropy (batch {head['batch_size']}, "
        f"latent {head['latent']})",
        "",
        f"SmallCNN, forward + loss + backward + Adam; {steps['batches']}; median of "
        f"{head['reps']} interleaved repetitions after {head['warmup']} warm-up.",
        "",
        "| arm | median ms | ratio of medians | median of paired ratios "
        "| paired ratios, quartiles | ratio of minimums |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in (*ARMS, PCA_OFF):
        r = head["ratio_to_ce"][name]
        low, high = _quartiles(head["times_s"][name], head["times_s"]["ce"])
        lines.append(
            f"| {name} | {_ms(head['median_s'][name])} | **{r['ratio_of_medians']:.3f}x** "
            f"| {r['median_paired_ratio']:.3f}x | {low:.2f}-{high:.2f} "
            f"| {r['ratio_of_mins']:.3f}x |"
        )
    lines += [
        "",
        "The quartiles of the per-repetition ratios show how much single steps varied in this "
        "run: a guide to how far the medians above can be trusted.",
    ]
    pca = head["pca"]
    lines += [
        "",
        "## (b) PCA share of the Latent Boost step",
        "",
        f"Batch {head['batch_size']}, latent {head['latent']}: the PCA call alone took "
        f"{_ms(head['median_s']['pca'])} ms of a {_ms(head['median_s']['latentboost'])} ms "
        f"step (**{100 * pca['call_share_of_step']:.1f}%**; median of paired shares "
        f"{100 * pca['call_share_paired']:.1f}%); the step with PCA on took "
        f"{pca['on_over_off']['ratio_of_medians']:.3f}x the step with PCA off "
        f"({100 * pca['on_minus_off_share']:.1f}% of the step).",
        "",
        "## (e) Growth with batch size and latent width: training step",
        "",
        "Ratios of medians to cross-entropy (same run) and the PCA call's share of the Latent "
        "Boost step:",
        "",
        "| batch | latent | ce ms | magnet | center | latentboost | LB PCA off "
        "| PCA call ms | PCA share |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in sorted(steps["runs"], key=lambda r: (r["latent"], r["batch_size"])):
        ratio = {n: run["ratio_to_ce"][n]["ratio_of_medians"] for n in (*ARMS, PCA_OFF)}
        lines.append(
            f"| {run['batch_size']} | {run['latent']} | {_ms(run['median_s']['ce'])} "
            f"| {ratio['magnet']:.3f}x | {ratio['center']:.3f}x | {ratio['latentboost']:.3f}x "
            f"| {ratio[PCA_OFF]:.3f}x | {_ms(run['median_s']['pca'])} "
            f"| {100 * run['pca']['call_share_of_step']:.1f}% |"
        )
    return lines


_SILHOUETTE_HEADER = [
    "| points x dims | repeats | ours s | scikit-learn s | speed-up | abs diff "
    "| peak MiB ours / scikit-learn |",
    "|---|---:|---:|---:|---:|---:|---:|",
]


def _silhouette_lines(sil: dict, settings: dict) -> list[str]:
    lines = [
        "",
        "## (c) Silhouette: latentboost_lab (torch) vs scikit-learn",
        "",
        f"{sil['data']}; median wall time; peak memory: {sil['memory']}.",
        "",
        *_SILHOUETTE_HEADER,
    ]
    lines += [_silhouette_line(r) for r in sil["sizes"]]
    lines += [
        "",
        f"## (e) Growth with latent width: silhouette at {settings['silhouette_width_points']:,} "
        "points (its growth in points is table (c))",
        "",
        *_SILHOUETTE_HEADER,
    ]
    lines += [_silhouette_line(r) for r in sil["widths"]]
    return lines


def _loader_lines(loader: dict) -> list[str]:
    return [
        "",
        "## (d) Loader: one epoch of normalised batches",
        "",
        f"{loader['images']:,} images ({loader['source']}), batch {loader['batch_size']}, "
        f"median of {loader['repeats']} interleaved epochs. Ours: {loader['ours']}; "
        f"torchvision: {loader['torchvision']}.",
        "",
        "| on-device loader s | torchvision DataLoader s | speed-up | median of paired speed-ups |",
        "|---:|---:|---:|---:|",
        f"| {loader['median_s']['ours_data']:.3f} | {loader['median_s']['tv_data']:.3f} "
        f"| **{loader['speedup']:.1f}x** | {loader['paired_speedup']:.1f}x |",
    ]


def _silhouette_line(r: dict) -> str:
    mib = 2**20
    memory = " / ".join(
        f"{r[f'{impl}_memory']['peak_bytes'] / mib:.0f}" if f"{impl}_memory" in r else "-"
        for impl in ("torch", "sklearn")
    )
    return (
        f"| {r['n']:,} x {r['dim']} | {r['repeats']} | {r['torch_s']:.3f} | {r['sklearn_s']:.3f} "
        f"| **{r['speedup']:.1f}x** | {r['abs_diff']:.1e} | {memory} |"
    )


# ------------------------------------------------------------------------------------------
# The command


def parse_args(argv=None):
    ints = comma_list(int, "integers")
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="folder for the JSON and Markdown (required)")
    parser.add_argument(
        "--summarize",
        type=Path,
        metavar="JSON",
        help="measure nothing: write the Markdown summary of a saved bench_suite.json again "
        "(beside it, or into --out), e.g. after a change to the summary's layout",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="CPU threads for torch and scikit-learn (default 1: see the module docstring)",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda, cuda:N")
    parser.add_argument(
        "--data-root",
        default=None,
        help="folder holding FashionMNIST/raw; also looked for: $LATENTBOOST_DATA and the cache "
        "folder, as load_dataset does; random images where none is found",
    )
    parser.add_argument(
        "--random-images",
        action="store_true",
        help="random images even where the real ones are found (same shapes, same computations; "
        "the tests use this)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument(
        "--skip-largest", action="store_true", help="leave out the largest silhouette size"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument(
        "--sections",
        type=comma_list(str, "section names"),
        default=["steps", "silhouette", "loader"],
        help="which to run: steps (a, b, e), silhouette (c, e), loader (d); default all",
    )
    group = parser.add_argument_group("sizes (default: the full run's, or --smoke's)")
    group.add_argument("--batch-sizes", type=ints, help="(e) batch sizes, e.g. 64,128,256")
    group.add_argument("--latent-widths", type=ints, help="(e) latent widths, e.g. 32,128,512")
    group.add_argument("--batch-size", type=positive_int, help="headline batch size (256)")
    group.add_argument("--latent", type=positive_int, help="headline latent width (128)")
    group.add_argument("--reps", type=positive_int, help="timed step repetitions (20)")
    group.add_argument("--warmup", type=non_negative_int, help="untimed repetitions first (3)")
    group.add_argument("--silhouette-sizes", type=ints, help="points (2000,10000,60000)")
    group.add_argument("--silhouette-repeats", type=positive_int, help="repetitions (5)")
    group.add_argument(
        "--silhouette-large", type=positive_int, help="from this size on, one call (30000)"
    )
    group.add_argument("--silhouette-widths", type=ints, help="(e) widths (32,128,512)")
    group.add_argument("--silhouette-width-points", type=positive_int, help="(e) points (10000)")
    group.add_argument("--loader-images", type=positive_int, help="images (all 60,000)")
    group.add_argument("--loader-repeats", type=positive_int, help="epochs each (3)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sections) - {"steps", "silhouette", "loader"})
    if unknown:
        parser.error(f"--sections: unknown {unknown}; expected steps, silhouette, loader")
    for option in ("batch_sizes", "latent_widths", "silhouette_sizes", "silhouette_widths"):
        values = getattr(args, option)
        if values is not None and min(values) < 1:
            parser.error(f"--{option.replace('_', '-')}: expected integers >= 1, got {values}")
    return parser, args


def settings_from(args) -> dict:
    settings = dict(PRESETS["smoke" if args.smoke else "full"])
    for key in settings:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    if args.no_memory:
        settings["memory"] = False
    if args.skip_largest and len(settings["silhouette_sizes"]) > 1:
        settings["silhouette_sizes"] = sorted(settings["silhouette_sizes"])[:-1]
    return settings


def summarize(parser, path: Path, out: Path | None) -> int:
    """``--summarize``: the Markdown of a saved run, from its JSON alone."""
    try:
        result = json.loads(path.read_text())
        summary = markdown(result)
    except OSError as err:
        parser.error(f"--summarize: cannot read {path} ({err.strerror})")
    except (ValueError, KeyError, TypeError) as err:
        parser.error(f"--summarize: {path} is not a bench_suite.json ({type(err).__name__}: {err})")
    target = (out or path.parent) / "bench_suite.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(summary)
    print(summary)
    return 0


def main(argv=None) -> int:
    from latentboost_lab.device import select_device

    parser, args = parse_args(argv)
    if args.summarize is not None:
        return summarize(parser, args.summarize, args.out)
    if args.out is None:
        parser.error("--out is required: the folder for bench_suite.json and bench_suite.md")
    try:
        device = select_device(args.device)
    except ValueError as err:
        parser.error(f"--device: {err}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"--out: cannot create the folder {args.out} ({err.strerror})")
    settings = settings_from(args)
    root = False if args.random_images else args.data_root
    command = shlex.join(
        ["python", "benchmarks/bench_suite.py", *(sys.argv[1:] if argv is None else argv)]
    )
    if os.environ.get("LATENTBOOST_DATA"):  # where the real images came from
        command = f"LATENTBOOST_DATA={shlex.quote(os.environ['LATENTBOOST_DATA'])} {command}"
    result = {
        "command": command,
        "settings": settings,
        "environment": {"load_start": load_average()},
        "sections": {},
    }
    started = time.perf_counter()
    with bench_silhouette.threads_limited(args.threads):
        # Inside the thread limit: torch_threads is the one the timings ran with.
        result["environment"]["provenance"] = provenance(device)
        if "steps" in args.sections:
            result["sections"]["steps"] = steps_section(settings, root, device)
        if "silhouette" in args.sections:
            result["sections"]["silhouette"] = silhouette_section(settings, device, args.threads)
        if "loader" in args.sections:
            result["sections"]["loader"] = loader_section(settings, root, device)
    result["seconds"] = time.perf_counter() - started
    result["environment"]["load_end"] = load_average()
    (args.out / "bench_suite.json").write_text(json.dumps(result, indent=1) + "\n")
    summary = markdown(result)
    (args.out / "bench_suite.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
