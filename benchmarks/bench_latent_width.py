"""The step cost of Latent Boost against cross-entropy at each place the latent can be taken.

    python benchmarks/bench_latent_width.py [--reps 10] [--batch-size 128] [--threads 1]
        [--models small_cnn,vgg11_bn,resnet18] [--out benchmarks/results/bench_latent_width.json]

Issue 13: L_dist on the flattened feature map (``latent="features"``) is up to 8,192 wide, far
wider than the batch. The batch PCA then works on the n x n Gram matrix (see
:mod:`latentboost_lab.losses.pca`), so its cost should stay small. This measures it: for each
model (SmallCNN on 1x28x28, VGG-11-BN and ResNet-18 on 3x32x32) one training step (forward,
loss, backward, Adam) of cross-entropy and of Latent Boost (PCA at 95%, the paper's λ = 0.75)
with the latent at ``embedding``, ``pooled`` and ``features``, every arm its own copy of the same
model, interleaved within each repetition (``bench_loss_step.interleave``: ABAB, rotated order),
medians over the repetitions and ratios of medians from the same run. Random uint8 images (the
timing does not depend on the pixel values). Cross-entropy's step is the same whatever the
latent (the latent is returned, not used), so one ce arm per model is the reference.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loss_step import interleave, make_step, ratios  # noqa: E402

from latentboost_lab.data import DATASETS  # noqa: E402
from latentboost_lab.losses import LatentBoostLoss  # noqa: E402
from latentboost_lab.models import LATENTS, build_model  # noqa: E402

DATA_FOR = {"small_cnn": "fashion_mnist", "vgg11_bn": "cifar10", "resnet18": "cifar10"}


def random_batch_and_model(model_name: str, batch_size: int):
    """A seeded random batch ``(x, y)`` shaped like the model's data set, and the model (seed 0,
    training mode); the benchmarks that time one step per model share it."""
    info = DATASETS[DATA_FOR[model_name]]
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch_size, *info.image_shape), generator=g).float() / 255
    y = torch.randint(0, info.num_classes, (batch_size,), generator=g)
    torch.manual_seed(0)
    return x, y, build_model(model_name, info).train()


def measure(model_name: str, batch_size: int, reps: int, warmup: int) -> dict:
    x, y, base = random_batch_and_model(model_name, batch_size)
    steps, widths = {}, {}
    for name in ("cross-entropy", *LATENTS):
        model = copy.deepcopy(base)
        if name == "cross-entropy":
            loss = lambda logits, latent, labels: F.cross_entropy(logits, labels)  # noqa: E731
        else:
            model.latent = name
            widths[name] = model.latent_dim
            lb = LatentBoostLoss(lam=0.75)
            loss = lambda logits, latent, labels, lb=lb: lb(logits, latent, labels, 0)  # noqa: E731
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        steps[name] = make_step(model, optimiser, loss, x, y)
    times = interleave(steps, reps, warmup)
    ce = times["cross-entropy"]
    return {
        "model": model_name,
        "image_shape": list(x.shape[1:]),
        "widths": widths,
        "median_ms": {k: 1e3 * statistics.median(v) for k, v in times.items()},
        "ratio_to_ce": {k: ratios(v, ce) for k, v in times.items() if k != "cross-entropy"},
        "seconds": times,
    }


def markdown(document: dict) -> str:
    lines = [
        f"Batch {document['batch_size']}, {document['reps']} interleaved repetitions after "
        f"{document['warmup']} warm-up, {document['threads']} thread(s), "
        f"{document['processor']}, torch {document['torch']}; load average "
        f"{document['load_start']} at the start, {document['load_end']} at the end.",
        "",
        "| model | latent | width | ce ms | Latent Boost ms | ratio of medians | median paired ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in document["models"]:
        for name in LATENTS:
            r = row["ratio_to_ce"][name]
            lines.append(
                f"| {row['model']} | {name} | {row['widths'][name]:,} | "
                f"{row['median_ms']['cross-entropy']:.0f} | {row['median_ms'][name]:.0f} | "
                f"{r['ratio_of_medians']:.3f}x | {r['median_paired_ratio']:.3f}x |"
            )
    return "\n".join(lines) + "\n"


def load_average() -> str:
    try:
        return (
            subprocess.run(["uptime"], capture_output=True, text=True)
            .stdout.split("average:")[-1]
            .strip()
        )
    except OSError:
        return "unknown"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="small_cnn,vgg11_bn,resnet18")
    parser.add_argument("--out", default=None, help="write JSON and Markdown beside it")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    document = {
        "command": "python benchmarks/bench_latent_width.py " + " ".join(argv or sys.argv[1:]),
        "batch_size": args.batch_size,
        "reps": args.reps,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "load_start": load_average(),
        "models": [],
    }
    for name in args.models.split(","):
        document["models"].append(measure(name, args.batch_size, args.reps, args.warmup))
        print(f"{name}: done", flush=True)
    document["load_end"] = load_average()
    text = markdown(document)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=1))
        out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
