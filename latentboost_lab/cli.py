"""The ``latentboost-lab`` command (also ``python -m latentboost_lab``).

    latentboost-lab demo                 cross-entropy vs Latent Boost on the embedded digits
    latentboost-lab data                 which data sets are present, and where
    latentboost-lab data PATH            check your own data (an .npz or an image folder)
    latentboost-lab train --loss ...     one training run, its history written as JSON
    latentboost-lab compare ...          the paper's comparison: arms x seeds, paired tests
    latentboost-lab merge OUT IN ...     the runs of several result folders (shards) into one
    latentboost-lab ood CHECKPOINT ...   out-of-distribution detection of one trained model
    latentboost-lab site                 the course site (notebooks, guide, results) as HTML

Errors are one line on stderr and a non-zero exit, except a data set that is not found (or
fails to download): that error lists every place looked at and how to get the data, 10 to 30
lines. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import __version__
from ._checks import _float_in, non_negative_int, positive_float, positive_int, unit_float
from .config import CHANNELS_LAST, DEFAULT_EPOCHS, DEFAULTS

DOWNLOADABLE = ("fashion_mnist", "cifar10", "cifar100")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like the command's other errors:
    ``latentboost-lab train: error: argument --epochs: expected an integer >= 1, got '0'``,
    exit status 2. Sub-commands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _dataset_arg(text: str) -> str:
    """``type=`` of --dataset: a known name, or your own data (an .npz file or an image folder)
    that loads. Your own data is read once here, so that a bad file or folder is reported (exit
    status 2, one line) before anything is written: --out is created before the run loads it."""
    from .data import DATASETS, load_dataset

    if text in DATASETS:
        return text
    path = Path(text)
    if path.suffix == ".npz" and not path.is_file():
        raise argparse.ArgumentTypeError(f"the .npz file {text} does not exist")
    if path.suffix != ".npz" and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(DATASETS)}, the path of an .npz file or of an image "
            f"folder, got {text!r}"
        )
    try:
        load_dataset(text, val_size=0, device="cpu")
    except (ValueError, TypeError, OSError) as err:  # DataFileError is a ValueError
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _group_arg(text: str) -> str:
    """``type=`` of --group: a named super-class grouping (latentboost_lab.data.groups); that it
    groups --dataset's classes is checked when the data loads (one line, exit status 1)."""
    from .data import GROUPINGS

    if text not in GROUPINGS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(GROUPINGS)}, got {text!r}")
    return text


_GROUP_HELP = (
    "a super-class task (issue 18): train on super-classes, the data set's own classes kept as "
    "hidden sub-classes for evaluation: fmnist_super (with fashion_mnist), "
    "cifar10_vehicles_animals (cifar10), digits_parity (digits)"
)


def _npz_out_arg(text: str) -> str:
    """``type=`` of data --npz: a path ending in .npz (what --dataset reads back)."""
    if not text.endswith(".npz"):
        raise argparse.ArgumentTypeError(f"expected a path ending in .npz, got {text!r}")
    return text


def _folder_arg(text: str) -> str:
    """``type=`` of --root: a folder that exists (a typo would otherwise silently fall back
    to $LATENTBOOST_DATA or the cache)."""
    if not Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"expected an existing folder, got {text!r}")
    return text


def _device_arg(text: str) -> str:
    """``type=`` of --device: the device must exist here (checked by select_device)."""
    from .device import select_device

    try:
        select_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _arm_name(text: str) -> str:
    """``type=`` of --reference: one arm's name (whether it ran is checked against runs.json)."""
    name = text.strip()
    if not name or "," in name:
        raise argparse.ArgumentTypeError(f"give one arm's name, such as ce, got {text!r}")
    return name


def _writable_folder(option: str, folder) -> Path:
    """Create ``folder`` and check that a file can be written in it, before any training: a
    typo or a read-only place is reported at once, not after the run."""
    from .training import check_writable_path

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{option}: cannot create the folder {folder} ({err.strerror})") from None
    check_writable_path(option, folder / ".probe")
    return folder


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        type=_dataset_arg,
        default="digits",
        help="digits (embedded, default), fashion_mnist, cifar10, cifar100, or your own data: "
        "the path of an .npz file or of an image folder (see `latentboost-lab data PATH`)",
    )
    p.add_argument("--group", type=_group_arg, default=None, help=_GROUP_HELP)
    p.add_argument(
        "--root",
        type=_folder_arg,
        default=None,
        help="folder holding the data (else $LATENTBOOST_DATA, the cache, ...)",
    )
    p.add_argument(
        "--download",
        action="store_true",
        default=True,
        help="the default: a named data set that is not found is downloaded by torchvision "
        "into the user cache on first use (one line says so; needs internet)",
    )
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download: stop with an error listing the places looked at",
    )
    p.add_argument(
        "--model",
        default="small_cnn",
        choices=["small_cnn", "vgg11_bn", "resnet18"],
        help="the classifier (default small_cnn; vgg11_bn and resnet18 need >= 16x16 images)",
    )
    p.add_argument(
        "--latent-dim",
        type=positive_int,
        default=None,
        help="width of the latent space (default: the model's)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="epoch budget (default depends on the data set)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULTS.batch_size,
        help=f"training batch size (default {DEFAULTS.batch_size})",
    )
    p.add_argument("--lr", type=positive_float, default=DEFAULTS.lr, help="Adam learning rate")
    p.add_argument(
        "--patience",
        type=positive_int,
        default=None,
        help="early stopping on val_acc after this many epochs",
    )
    p.add_argument(
        "--n-train", type=positive_int, default=None, help="stratified subset of the training split"
    )
    p.add_argument(
        "--n-test", type=positive_int, default=None, help="stratified subset of the test split"
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the model, the subsets and the batches",
    )
    p.add_argument(
        "--device",
        type=_device_arg,
        default="auto",
        help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps",
    )
    p.add_argument(
        "--memory-format",
        choices=["auto", "channels_last", "contiguous"],
        default="auto",
        help="the layout the model trains in: auto (default: the model's fastest on the device, "
        "channels_last for small_cnn and resnet18 on the CPU, NCHW elsewhere; a comparison "
        "continues in its folder's recorded format), channels_last, or contiguous (NCHW)",
    )
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (for GPUs)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (for GPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    # The docstring's first line without its reST markup (``...``): --help is plain text.
    description = __doc__.split("\n\n")[0].replace("``", "")
    parser = _Parser(prog="latentboost-lab", description=description)
    parser.add_argument("--version", action="version", version=f"latentboost-lab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="train cross-entropy and Latent Boost side by side; print a table, save a figure",
        description="Train the cross-entropy baseline and Latent Boost with the same data, model, "
        "seed and budget; print accuracy, macro-F1, silhouette, epochs and seconds; write a "
        "figure of the two test latent spaces projected to 2-D.",
    )
    _add_common(demo)
    demo.add_argument(
        "--lam", type=unit_float, default=0.75, help="λ of Latent Boost (weight of the Magnet term)"
    )
    demo.add_argument("--out", default="demo_output", help="folder for the figure and results.json")

    data = sub.add_parser(
        "data",
        help="show which data sets are available and where; check (and convert) your own",
        description="List the data sets, where each was found (nothing is downloaded unless "
        "--download is given) and the places searched. With PATH (your own .npz file or image "
        "folder): read it and show its classes, splits and image shape, or say what is wrong; "
        "with --npz, save it (resized and converted as asked) as an .npz to train on.",
    )
    data.add_argument(
        "path",
        nargs="?",
        default=None,
        metavar="PATH",
        help="your own data to check: an .npz file or an image folder (one sub-folder per class)",
    )
    data.add_argument(
        "--root", type=_folder_arg, default=None, help="an extra folder to search first"
    )
    data.add_argument(
        "--group",
        type=_group_arg,
        default=None,
        help="show a super-class task: its super-classes, their sub-classes and, when its data "
        "set is present, the images of each in the training and test splits",
    )
    data.add_argument(
        "--download",
        metavar="NAME",
        choices=DOWNLOADABLE,
        default=None,
        help=f"download this data set with torchvision: {', '.join(DOWNLOADABLE)}",
    )
    data.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="with PATH: resize every image to N x N pixels",
    )
    data.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="with PATH: convert every image to 1 (grayscale) or 3 (RGB) channels",
    )
    data.add_argument(
        "--test-size",
        type=_float_in(0.0, 1.0, False, False, "a number in (0, 1)"),
        default=None,
        help="with PATH, a folder without test/: the share of each class held out for testing "
        "(default 0.2, fixed seed)",
    )
    data.add_argument(
        "--npz",
        type=_npz_out_arg,
        default=None,
        metavar="OUT",
        help="with PATH: save the data, as read, to the .npz file OUT (train with --dataset OUT)",
    )

    train = sub.add_parser(
        "train",
        help="one training run with a chosen loss; history as JSON",
        description="Train one model with one loss and write its history (and checkpoint).",
    )
    _add_common(train)
    train.add_argument(
        "--loss",
        default="ce",
        choices=("ce", "magnet", "center", "latentboost"),
        help="ce, magnet, center or latentboost",
    )
    train.add_argument(
        "--lam", type=unit_float, default=None, help="λ (latentboost, center); default per data set"
    )
    train.add_argument(
        "--reading",
        type=_reading_arg,
        default=None,
        help="with --loss latentboost: a reading of the paper (issue 13): paper (our preset: "
        "L_dist on the flattened feature map), features, pooled, detached_variance, or parts "
        "joined by + (features+detached_variance)",
    )
    train.add_argument(
        "--out",
        default="runs/run",
        help="path prefix: writes PREFIX.json (and PREFIX.pt); default runs/run, so "
        "runs/run.json in the current folder, replaced by the next run",
    )
    train.add_argument(
        "--checkpoint", action="store_true", help="write a checkpoint after every epoch"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint PREFIX.pt"
    )
    add_compare_parser(sub)
    add_merge_parser(sub)
    add_ood_parser(sub)
    site = sub.add_parser(
        "site",
        help="build the course site into build/site/",
        description="Build the course site (the notebooks with their saved outputs, the course "
        "guide, the README and the results) with Sphinx into a folder of static HTML "
        "(latentboost_lab.site). Needs the site extra: pip install -e '.[site]'.",
    )
    site.add_argument("--out", default=None, help="output folder (default: build/site)")
    return parser


def _val_share(text: str) -> float:
    """``type=`` of --val-size: a share of the training split in [0, 1)."""
    value = float(text) if text.replace(".", "", 1).isdigit() else -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def add_compare_parser(sub) -> None:
    """``latentboost-lab compare``: the experiment runner (:mod:`latentboost_lab.experiments`)."""
    from ._checks import comma_list, positive_int, unit_float

    compare = sub.add_parser(
        "compare",
        help="the paper's comparison: several arms x seeds, a report with paired tests",
        description="Train every arm with every seed on the same data, weights, batches and "
        "budget (only the loss differs), evaluate on the test split, and write runs.json, "
        "summary.md (beside the paper's claims), summary.json and figures into --out. Runs "
        "already in --out are not redone; an interrupted run continues from its checkpoint.",
    )
    _add_common(compare)
    compare.add_argument(
        "--arms",
        type=comma_list(str, "arm names"),
        default=["ce", "magnet", "center", "latentboost"],
        help="comma-separated: ce, magnet, center, latentboost (default all four)",
    )
    compare.add_argument(
        "--seeds",
        type=positive_int,
        default=3,
        help="number of seeds: --seed, --seed+1, ... (default 3)",
    )
    compare.add_argument(
        "--lam",
        type=comma_list(unit_float, "numbers in [0, 1]"),
        default=None,
        help="λ of Latent Boost; several (0.25,0.5,0.75) make a λ sweep, one arm each "
        "(default: the paper's best for the data set)",
    )
    compare.add_argument(
        "--ablations",
        type=comma_list(str, "ablation names"),
        default=[],
        help="Latent Boost with a part switched off, one arm each: no_pca, shared_variance, "
        "fixed_weights",
    )
    compare.add_argument(
        "--readings",
        type=comma_list(str, "reading names"),
        default=[],
        help="Latent Boost read another way, one arm each (issue 13): features (L_dist on the "
        "flattened feature map), pooled, detached_variance, or paper (the preset: "
        "recipes.PRESETS['paper']); combine with +, e.g. features+detached_variance",
    )
    compare.add_argument(
        "--clusters",
        type=comma_list(str, "cluster arm names"),
        default=[],
        help="Latent Boost or Magnet with K > 1 clusters per class, one arm each (issue 18): "
        "latentboost-k_sub, magnet-k_sub (K = the sub-classes of each super-class; needs "
        "--group), latentboost-k_auto, magnet-k_auto (K chosen by the silhouette rule on the "
        "training latents after epoch 1)",
    )
    compare.add_argument(
        "--lam-strategies",
        type=comma_list(str, "λ strategy names"),
        default=[],
        help="Latent Boost with a λ that changes during training, one arm each (issue 18): "
        "warmup (0 to λ over 5 epochs), uncertainty (Kendall et al.'s learned weights), "
        "grad_ratio (equal gradient norms at the latent), controller (λ steered by the "
        "validation accuracy), constant",
    )
    compare.add_argument(
        "--val-size",
        type=_val_share,
        default=0.1,
        help="share of the training split held out for validation (default 0.1)",
    )
    compare.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's, one per core; OpenMP's threads wait "
        "passively, so 2 threads do not collapse beside another busy process: "
        "benchmarks/bench_threads.py)",
    )
    compare.add_argument(
        "--out",
        default=None,
        help="output folder (default results/DATASET_MODEL, results/GROUP_MODEL with --group)",
    )
    compare.add_argument(
        "--reference",
        type=_arm_name,
        default=None,
        help="the arm every other arm is compared with, paired over seeds, in the report "
        "(default: the one given before for this folder, else ce; e.g. latentboost to compare "
        "λ strategies with the constant λ); recorded in runs.json",
    )
    compare.add_argument(
        "--report-only",
        action="store_true",
        help="only rewrite summary.md, summary.json and the figures from --out/runs.json",
    )
    compare.add_argument(
        "--estimate",
        nargs="?",
        const=3,
        default=None,
        type=positive_int,
        metavar="EPOCHS",
        help="do not run the comparison: train each arm for EPOCHS epochs (default 3; the first "
        "is timed apart, as it carries start-up costs) in exactly this setting, and print the "
        "time per epoch, per run and for the runs not yet in --out; nothing is written",
    )
    compare.add_argument(
        "--ood",
        type=_ood_sets_arg,
        default=None,
        metavar="SETS",
        help="after training, score every run out of distribution against these sets with "
        "every score (issue 16): " + _OOD_SETS_HELP,
    )
    compare.add_argument(
        "--n-ood",
        type=positive_int,
        default=None,
        help="images per OOD set (default: a real set whole, a synthetic one as large as the "
        "test split)",
    )
    _add_launch_options(compare)


def _shard_arg(text: str) -> tuple[int, int]:
    """``type=`` of --shard: K/N with 1 <= K <= N."""
    from .experiments import parse_shard

    try:
        return parse_shard(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}") from None


def _devices_arg(text: str) -> list[str]:
    """``type=`` of --devices: cpu, mps, cuda or cuda:K, comma-separated."""
    from .launch import parse_devices

    try:
        return parse_devices(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("devices must be ")) from None


def _add_launch_options(compare) -> None:
    """compare's options for many runs at once (issue 17; latentboost_lab.launch)."""
    group = compare.add_argument_group(
        "many runs at once", "worker processes on one machine, or one job per run on Slurm"
    )
    group.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="runs at once: worker processes on this machine (default 1: in this process); "
        "with --launcher slurm, the most jobs running at once",
    )
    group.add_argument(
        "--devices",
        type=_devices_arg,
        default=None,
        help="with --jobs: the workers' devices, e.g. cuda:0,cuda:1 (worker i takes the i-th, "
        "cycling; default: every visible GPU, else --device); each worker uses --threads CPU "
        "threads (default 1)",
    )
    group.add_argument(
        "--shard",
        type=_shard_arg,
        default=None,
        metavar="K/N",
        help="only the K-th of N shards of the runs (every N-th run from the K-th, in the order "
        "seeds then arms): one shard per machine, then `latentboost-lab merge`",
    )
    group.add_argument(
        "--launcher",
        choices=["local", "slurm"],
        default=None,
        help="submit one job per run through submitit (pip install 'latentboost-lab[cluster]'): "
        "slurm (a job array; a pre-empted or timed-out job is requeued and resumes from its "
        "checkpoint; write the report afterwards with --report-only), or local (the same jobs "
        "as local processes, all at once, waited for)",
    )
    group.add_argument(
        "--partition", type=str, default=None, help="Slurm partition (default: the cluster's)"
    )
    group.add_argument(
        "--time",
        type=positive_int,
        default=240,
        metavar="MINUTES",
        help="time limit of each job in minutes (default 240); a run that needs more is "
        "requeued and continues from its checkpoint",
    )
    group.add_argument(
        "--gpus-per-job", type=non_negative_int, default=1, help="Slurm GPUs per job (default 1)"
    )
    group.add_argument(
        "--cpus-per-job",
        type=positive_int,
        default=None,
        help="Slurm CPUs per job (default: the cluster's); also the job's torch threads unless "
        "--threads is given",
    )
    group.add_argument(
        "--mem-gb", type=positive_float, default=None, help="Slurm memory per job in GB"
    )


def _check_launch_options(args) -> None:
    """Combinations of compare's launch options that cannot work, named before anything runs."""
    launching = args.jobs > 1 or args.launcher is not None or args.shard is not None
    if launching and (args.report_only or args.estimate):
        raise ValueError(
            "--jobs, --launcher and --shard run the comparison: leave them out with "
            "--report-only and --estimate"
        )
    if args.devices is not None and args.launcher is not None:
        raise ValueError(
            "--devices is for --jobs on this machine; with --launcher each job gets its GPUs "
            "from the launcher (--gpus-per-job)"
        )
    if args.devices is not None and args.jobs == 1:
        raise ValueError("--devices needs --jobs N (N > 1): one device per worker process")
    if args.launcher == "local" and args.jobs > 1:
        raise ValueError(
            "--jobs with --launcher local: the local launcher starts every run at once; use "
            "--jobs N without --launcher to run N at a time on this machine"
        )
    slurm = ("partition", "gpus_per_job", "cpus_per_job", "mem_gb")
    given = [f"--{k.replace('_', '-')}" for k in slurm if getattr(args, k) != _SLURM_DEFAULTS[k]]
    if given and args.launcher != "slurm":
        raise ValueError(f"{', '.join(given)}: Slurm options, for --launcher slurm only")


_SLURM_DEFAULTS = {"partition": None, "gpus_per_job": 1, "cpus_per_job": None, "mem_gb": None}


def cmd_compare(args) -> int:
    import torch

    from .estimate import estimate_time, format_estimate
    from .experiments import (
        ExperimentConfig,
        Results,
        parse_arms,
        run_experiment,
    )

    task = args.group or Path(str(args.dataset)).stem  # a super-class task has its own folder
    out = Path(args.out or f"results/{task}_{args.model}")
    if args.report_only and args.estimate:
        raise ValueError("--report-only and --estimate exclude each other: choose one")
    _check_launch_options(args)
    if args.report_only:
        results = Results.load(out)
        for path in results.write_report(reference=_reference(args, results)):
            print(f"wrote {path}")
        return 0
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    arms = parse_arms(
        args.arms, args.lam, args.ablations, args.readings, args.clusters, args.lam_strategies
    )
    config = ExperimentConfig(
        dataset=str(args.dataset),
        group=args.group,
        arms=arms,
        seeds=list(range(args.seed, args.seed + args.seeds)),
        model=args.model,
        latent_dim=args.latent_dim,
        epochs=args.epochs if args.epochs is not None else DEFAULT_EPOCHS.get(args.dataset, 20),
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        n_train=args.n_train,
        n_test=args.n_test,
        val_size=args.val_size,
        root=args.root,
        download=args.download,
        device=args.device,
        memory_format=args.memory_format,
        bf16=args.bf16,
        compile=args.compile,
        ood=args.ood or (),
        n_ood=args.n_ood,
    )
    if args.estimate:
        estimate = estimate_time(
            config, epochs=args.estimate, out_dir=out, progress=not args.no_progress
        )
        print(format_estimate(estimate))
        return 0
    command = "latentboost-lab " + " ".join(sys.argv[1:]) if sys.argv[1:] else None
    if args.launcher is not None:
        return _submit(args, config, out, command)
    if args.jobs > 1:
        from .launch import run_jobs

        results = run_jobs(
            config,
            out,
            jobs=args.jobs,
            devices=args.devices,
            threads=args.threads or 1,
            shard=args.shard,
            command=command,
            progress=not args.no_progress,
        )
    else:
        results = run_experiment(
            config, out, progress=not args.no_progress, command=command, shard=args.shard
        )
    reference = _reference(args, results)
    if reference != "ce":  # the runner wrote the report against ce
        results.write_report(reference=reference)
    print(results.markdown(reference=reference))
    print(f"wrote {out / 'runs.json'}, {out / 'summary.md'} and figures")
    return 0


def _reference(args, results) -> str:
    """The report's reference arm: --reference when given (checked to be an arm of the
    comparison: a clear error, not an empty table), else ce."""
    from .results import arms_in

    if args.reference is None:
        return results.reference  # the one recorded by an earlier --reference, else ce
    arms = arms_in(results)
    if args.reference not in arms:
        raise ValueError(f"--reference: {args.reference!r} is not an arm of this comparison {arms}")
    if results.config.get("reference", "ce") != args.reference:  # kept for --report-only
        results.config["reference"] = args.reference
        results.save()
    return args.reference


def _submit(args, config, out: Path, command: str | None) -> int:
    """compare --launcher: one submitit job per run; local jobs are waited for."""
    from .experiments import Results
    from .launch import submit

    jobs = submit(
        config,
        out,
        launcher=args.launcher,
        shard=args.shard,
        command=command,
        threads=args.threads,
        jobs=args.jobs if args.jobs > 1 else None,
        partition=args.partition,
        time_min=args.time,
        gpus_per_job=args.gpus_per_job,
        cpus_per_job=args.cpus_per_job,
        mem_gb=args.mem_gb,
    )
    if not jobs:
        print(f"every run is in {out / 'runs.json'} already: nothing to submit")
    elif args.launcher == "slurm":
        ids = ", ".join(job.job_id for job in jobs)
        print(f"submitted {len(jobs)} Slurm jobs ({ids}); logs in {out / 'submitit'}")
        print(f"when they are done: latentboost-lab compare --report-only --out {out}")
        return 0
    failed = []
    for job in jobs:  # local jobs: wait, then write the report as the runner does
        try:
            job.result()
        except Exception as err:  # noqa: BLE001 (every job is waited for; all failures named)
            failed.append(f"job {job.job_id}: {str(err).strip().splitlines()[-1]}")
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(jobs)} jobs failed ({'; '.join(failed)})")
    results = Results.load(out)
    reference = _reference(args, results)
    results.write_report(reference=reference)
    print(results.markdown(reference=reference))
    print(f"wrote {out / 'runs.json'}, {out / 'summary.md'} and figures")
    return 0


def add_merge_parser(sub) -> None:
    """``latentboost-lab merge``: several result folders of one comparison into one."""
    merge = sub.add_parser(
        "merge",
        help="merge the runs of several result folders of one comparison (shards) into one",
        description="Merge the runs.json of IN folders (shards run on several machines, or "
        "folders of the same comparison) into OUT/runs.json, then write the report there. "
        "Folders made with other settings are refused. A run found in two folders is kept once "
        "when its copies are equal but for the timing fields, and is an error naming the run "
        "when they differ. An existing OUT/runs.json counts as the first IN.",
    )
    merge.add_argument("out", help="the folder of the merged runs.json and report")
    merge.add_argument("inputs", nargs="+", metavar="IN", help="result folders (or runs.json)")


def cmd_merge(args) -> int:
    from .report import write_report
    from .results import merge_folders

    command = "latentboost-lab " + " ".join(sys.argv[1:]) if sys.argv[1:] else "merge"
    results = merge_folders(args.out, args.inputs, command)
    for path in write_report(results):
        print(f"wrote {path}")
    print(f"wrote {Path(args.out) / 'runs.json'}: {len(results.runs)} runs")
    return 0


# --- out-of-distribution detection (issue 16; latentboost_lab.ood) -----------------------------

_OOD_SETS_HELP = (
    "comma-separated among mnist, fashion_mnist, cifar10 (real; converted to the training "
    "images' shape), gaussian, uniform, shuffled (synthetic), or the groups noise (gaussian, "
    "uniform) and synthetic (all three)"
)


def _ood_sets_arg(text: str) -> list[str]:
    """``type=`` of --ood / --sets: known set names (groups expanded)."""
    from .ood import parse_ood

    try:
        return parse_ood(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_ood_parser(sub) -> None:
    """``latentboost-lab ood``: score one saved checkpoint out of distribution."""
    from ._checks import comma_list

    ood = sub.add_parser(
        "ood",
        help="out-of-distribution detection of one saved checkpoint: AUROC, FPR95 per score",
        description="Load a checkpoint written by `latentboost-lab train --checkpoint` (its "
        "best epoch's weights when early stopping kept them), fit every OOD score on the "
        "training split of --dataset, and score its test split against each OOD set. OOD "
        "images are converted to the training images' shape and normalised with the training "
        "set's statistics. Prints AUROC and FPR at 95% TPR per set and score.",
    )
    ood.add_argument("checkpoint", help="the .pt file (train --checkpoint writes PREFIX.pt)")
    ood.add_argument(
        "--dataset",
        type=_dataset_arg,
        default=None,
        help="the in-distribution data set the checkpoint was trained on (default: the one the "
        "checkpoint names, when it is a built-in data set)",
    )
    ood.add_argument(
        "--group",
        type=_group_arg,
        default=None,
        help="the super-class task the checkpoint was trained on (default: the one the "
        "checkpoint names; none for a checkpoint of the data set's own classes): "
        "fmnist_super, cifar10_vehicles_animals or digits_parity",
    )
    ood.add_argument(
        "--sets",
        type=_ood_sets_arg,
        default=["gaussian", "uniform", "shuffled"],
        metavar="SETS",
        help="the OOD sets (default synthetic): " + _OOD_SETS_HELP,
    )
    ood.add_argument(
        "--model",
        default=None,
        choices=["small_cnn", "vgg11_bn", "resnet18"],
        help="the architecture (default: read from the checkpoint)",
    )
    ood.add_argument(
        "--scores",
        type=comma_list(str, "score names"),
        default=None,
        help="comma-separated among msp, max_logit, energy, mahalanobis, knn, cluster, "
        "cluster_kN (N >= 2 clusters per class; default: all, with cluster_k4)",
    )
    ood.add_argument("--k", type=positive_int, default=50, help="the kNN score's k (default 50)")
    ood.add_argument("--n-ood", type=positive_int, default=None, help="images per OOD set")
    ood.add_argument(
        "--n-train",
        type=positive_int,
        default=None,
        help="stratified subset of the training split to fit the scores on",
    )
    ood.add_argument(
        "--n-test", type=positive_int, default=None, help="stratified subset of the test split"
    )
    ood.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the subsets and synthetic sets"
    )
    ood.add_argument("--root", type=_folder_arg, default=None, help="folder holding the data")
    ood.add_argument(
        "--download", action="store_true", help="let torchvision download missing data"
    )
    ood.add_argument("--device", type=_device_arg, default="auto", help="auto, cpu, cuda, mps")
    ood.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    ood.add_argument(
        "--json",
        type=_json_out_arg,
        default=None,
        metavar="PATH",
        help="also write the metrics to this .json file",
    )


def _json_out_arg(text: str) -> str:
    """``type=`` of ood --json: a path ending in .json (checked writable when the command starts)."""
    if not text.endswith(".json"):
        raise argparse.ArgumentTypeError(f"expected a path ending in .json, got {text!r}")
    return text


def _model_from_checkpoint(state: dict, path, data, name: str | None):
    """The model of a checkpoint, built for ``data`` and loaded with its kept weights."""
    from .models import MODELS, build_model

    config = state.get("config") or {}
    saved = config.get("model")
    names = [name] if name else (["small_cnn"] if saved == "SmallCNN" else list(MODELS))
    # The weights fit returned: the best epoch's with early stopping, else the last epoch's.
    best = config.get("patience") is not None and state.get("best_model") is not None
    weights = state["best_model"] if best else state["model"]
    errors = []
    for candidate in names:
        for latent_dim in dict.fromkeys([config.get("latent_dim"), None]):
            try:
                model = build_model(candidate, data.info, latent_dim)
                model.load_state_dict(weights)
            except (RuntimeError, ValueError, TypeError) as err:
                errors.append(f"{candidate}: {str(err).splitlines()[0]}")
                continue
            return model, candidate, best
    raise ValueError(
        f"checkpoint {path}: its weights fit none of {names} built for {data.info.name} "
        f"({'; '.join(errors[:2])}); give --model and --dataset as in training"
    )


def cmd_ood(args) -> int:
    import torch

    from .data import load_dataset
    from .ood import DEFAULT_SCORES, OODScorer, format_ood_table, load_ood
    from .runstore import atomic_write
    from .training import check_writable_path, load_checkpoint

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.json:
        check_writable_path("--json", args.json)
    path = Path(args.checkpoint)
    if not path.is_file():
        raise ValueError(f"checkpoint: {path} does not exist (train --checkpoint writes PREFIX.pt)")
    state = load_checkpoint(path)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(
            f"checkpoint {path}: not a checkpoint of `latentboost-lab train --checkpoint` "
            "(it holds no 'model' weights)"
        )
    dataset = args.dataset
    if dataset is None:
        from .data import DATASETS

        dataset = (state.get("config") or {}).get("dataset")
        if dataset not in DATASETS:
            raise ValueError(
                f"--dataset: the checkpoint names the data set {dataset!r}; give --dataset "
                "(the .npz file or folder it was trained on)"
            )
    saved = state.get("config") or {}
    group = args.group or saved.get("group") or None  # "": the data set's own classes
    if args.group and saved.get("group") and args.group != saved["group"]:
        raise ValueError(
            f"--group: the checkpoint was trained on the super-class task {saved['group']!r}, "
            f"not {args.group!r}"
        )
    data = load_dataset(
        dataset,
        root=args.root,
        n_train=args.n_train,
        n_test=args.n_test,
        seed=args.seed,
        device=args.device,
        download=args.download,
        group=group,
    )
    trained_on = saved.get("dataset")
    if trained_on and trained_on != data.info.name:
        raise ValueError(
            f"--dataset: the checkpoint was trained on {trained_on!r}, not {data.info.name!r}"
        )
    classes = saved.get("num_classes")
    if isinstance(classes, int) and classes > 0 and classes != data.num_classes:
        task = f"the super-class task {group!r}" if group else "its own classes"
        raise ValueError(
            f"--group: the checkpoint's model has {classes} classes; {data.info.name} with "
            f"{task} has {data.num_classes}: give the super-class task it was trained on "
            "(--group NAME), or none for the data set's own classes"
        )
    model, name, best = _model_from_checkpoint(state, path, data, args.model)
    model.to(data.device)
    print(
        f"{path}: {name} ({'best epoch' if best else 'last epoch'}'s weights), trained on "
        f"{data.info.name}{f' (super-classes {group})' if group else ''}; fitted on {len(data.y_train)} training images, "
        f"{len(data.y_test)} test images in distribution"
    )
    sets = {
        s: load_ood(s, data, n=args.n_ood, seed=args.seed, root=args.root, download=args.download)
        for s in args.sets
    }
    for ood_set in sets.values():
        print(f"  {ood_set!r}")
    scorer = OODScorer(args.scores or DEFAULT_SCORES, k=args.k, seed=args.seed).fit(model, data)
    result = scorer.evaluate(sets)
    print()
    print(format_ood_table(result, "auroc"))
    print()
    print(format_ood_table(result, "fpr95"))
    if args.json:
        document = {
            "checkpoint": str(path),
            "dataset": data.info.name,
            "model": name,
            "n_train": len(data.y_train),
            "n_test": len(data.y_test),
            "sets": {s: {"size": len(o), "source": o.source} for s, o in sets.items()},
            "metrics": result,
        }
        atomic_write(args.json, json.dumps(document, indent=1).encode())
        print(f"\nwrote {args.json}")
    return 0


def _load(args):
    from .data import load_dataset

    return load_dataset(
        args.dataset,
        root=args.root,
        n_train=args.n_train,
        n_test=args.n_test,
        seed=args.seed,
        device=args.device,
        download=args.download,
        group=args.group,
    )


def _train_arm(args, data, loss_name: str, lam: float | None):
    """One arm trained as the runner builds it (:func:`latentboost_lab.experiments.build_run`),
    with the command's fit options."""
    from .experiments import Arm, build_run
    from .recipes import resolve_reading
    from .training import fit

    latent, options = "embedding", {}
    if getattr(args, "reading", None):  # train --reading: Latent Boost read another way
        latent, options = resolve_reading(args.reading)
    arm = Arm(loss_name, loss_name, lam, tuple(options.items()), latent)
    model, loss = build_run(arm, data, args.seed, model=args.model, latent_dim=args.latent_dim)
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS.get(data.info.name, 20)
    history = fit(
        model,
        data,
        loss,
        epochs=epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        patience=args.patience,
        seed=args.seed,
        channels_last=CHANNELS_LAST[args.memory_format],
        bf16=args.bf16,
        compile=args.compile,
        progress=not args.no_progress,
        **getattr(args, "fit_extra", {}),
    )
    return model, loss, history


def _warm_up(args, data) -> float:
    """Pay the process's one-off start-up costs before any arm is timed, and return the seconds
    it took: the lazy imports (the first optimizer imports torch._dynamo, with sympy and
    triton: seconds, hundreds of modules) and the model's first forward and backward pass.
    Without it the first arm's seconds carried them (21.6 s against 8.2 s on a rerun, issue
    19). The arms are seeded afresh, so it changes no result."""
    started = time.perf_counter()
    import torch

    from .experiments import build_run  # noqa: F401  (imported for its cost, as _train_arm does)
    from .models import build_model
    from .training import fit  # noqa: F401

    model = build_model(args.model, data.info, args.latent_dim).to(data.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    logits, latent = model(torch.zeros(2, *data.info.image_shape, device=data.device))
    (logits.sum() + latent.sum()).backward()
    optimizer.step()
    return time.perf_counter() - started


def cmd_demo(args) -> int:
    from .experiments import test_metrics
    from .inference import embed
    from .plots import plot_comparison_latents
    from .runstore import atomic_write

    out = _writable_folder("--out", args.out)  # fail now, not after training
    data = _load(args)
    print(f"data: {data!r} from {data.source}")
    warm_up_seconds = _warm_up(args, data)  # so that both arms' seconds count the same things
    rows, latents = [], {}
    for name, loss_name, lam in (
        ("cross-entropy", "ce", None),
        (f"Latent Boost (λ={args.lam:g})", "latentboost", args.lam),
    ):
        started = time.perf_counter()
        model, loss, history = _train_arm(args, data, loss_name, lam)
        seconds = time.perf_counter() - started
        metrics = test_metrics(model, data, loss)  # the runner's test metrics
        rows.append(
            {
                "arm": name,
                "test_acc": metrics["acc"],
                "macro_f1": metrics["macro_f1"],
                "silhouette": metrics["silhouette"],
                "epochs": history.epochs_to_stop,
                "seconds": seconds,
            }
        )
        latent, labels = embed(model, data, "test")
        latents[name] = (latent.cpu(), labels.cpu())
    print()
    print(format_table(rows))
    print(
        f"seconds: each arm's training (fit, with its per-epoch evaluation), timed alike after "
        f"a {warm_up_seconds:.1f} s warm-up that neither arm is charged for (the process's "
        "one-off imports and first forward and backward pass)"
    )
    figure = plot_comparison_latents(latents, class_names=data.classes)
    figure.savefig(out / "latent_spaces.png", dpi=120, bbox_inches="tight")
    results = {"dataset": data.info.name, "model": args.model, "seed": args.seed, "rows": rows}
    results["warm_up_seconds"] = warm_up_seconds
    atomic_write(out / "results.json", json.dumps(results, indent=1).encode())
    print(f"\nwrote {out / 'latent_spaces.png'} and {out / 'results.json'}")
    return 0


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the demo's rows."""
    head = "| arm | test accuracy | macro-F1 | silhouette (test latent) | epochs | seconds |"
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['test_acc']:.4f} | {r['macro_f1']:.4f} | {r['silhouette']:.4f} "
            f"| {r['epochs']} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def cmd_data(args) -> int:
    from .data import available_datasets, load_dataset, search_dirs

    own = {"--image-size": args.image_size, "--channels": args.channels}
    own |= {"--test-size": args.test_size, "--npz": args.npz}
    if args.path is None and any(v is not None for v in own.values()):
        given = [k for k, v in own.items() if v is not None]
        raise ValueError(f"{', '.join(given)}: only with PATH (your own data)")
    if args.group is not None:
        if args.path is not None or args.download:
            raise ValueError("--group excludes PATH and --download: show one thing at a time")
        return _show_group(args)
    if args.path is not None:
        if args.download or args.root:
            raise ValueError("PATH excludes --download and --root: check one thing at a time")
        return _check_own_data(args)
    if args.download:
        data = load_dataset(args.download, root=args.root, download=True)
        print(f"{args.download}: {data!r} from {data.source}")
        return 0
    for name, place in available_datasets(args.root).items():
        print(f"{name:14s} {place if place else 'not found'}")
    print(
        "\nsearched, in order:", ", ".join(str(d) for d in search_dirs("fashion_mnist", args.root))
    )
    print(
        "missing data: train, demo and compare download it on first use (unless --no-download); "
        "`latentboost-lab data --download NAME` fetches it now; or set LATENTBOOST_DATA to a "
        "folder holding it"
    )
    print("your own data: `latentboost-lab data PATH` checks an .npz file or an image folder")
    return 0


def _show_group(args) -> int:
    """``data --group NAME``: the super-classes and their sub-classes; with the data set
    present (nothing is downloaded), how many images each has in the training and test
    splits."""
    import torch

    from .data import GROUPINGS, available_datasets, load_dataset

    grouping = GROUPINGS[args.group]
    print(
        f"{grouping.name}: the classes of {grouping.dataset} in {len(grouping.groups)} "
        "super-classes (a model trains on these; the classes are its hidden sub-classes)"
    )
    if not available_datasets(args.root).get(grouping.dataset):
        for label, (name, members) in enumerate(grouping.groups):
            print(f"  {label} {name} = {', '.join(members)}")
        print(
            f"{grouping.dataset} not found here: `latentboost-lab data --download "
            f"{grouping.dataset}` fetches it (or train and compare download it on first use)"
        )
        return 0
    data = load_dataset(
        grouping.dataset, root=args.root, val_size=0, device="cpu", download=False,
        group=grouping.name,
    )  # fmt: skip
    counts = {
        split: torch.bincount(data.split(split)[1], minlength=data.num_classes).tolist()
        for split in ("train", "test")
    }
    for label, (name, members) in enumerate(grouping.groups):
        print(
            f"  {label} {name} = {', '.join(members)}: {counts['train'][label]} training, "
            f"{counts['test'][label]} test images"
        )
    print(
        f"compare on it: latentboost-lab compare --dataset {grouping.dataset} --group "
        f"{grouping.name} --arms ce,latentboost --clusters latentboost-k_sub,"
        "latentboost-k_auto,magnet-k_sub"
    )
    return 0


def _check_own_data(args) -> int:
    """``data PATH``: read the user's data as training would, describe it; with --npz save it."""
    import io

    import numpy as np
    import torch

    from .data import load_dataset
    from .runstore import atomic_write
    from .training import check_writable_path

    if args.npz is not None:
        check_writable_path("--npz", args.npz)  # fail now, not after reading every image
    data = load_dataset(
        args.path,
        val_size=0,
        device="cpu",
        image_size=args.image_size,
        channels=args.channels,
        test_size=args.test_size,
    )
    channels, height, width = data.info.image_shape
    print(
        f"{data.info.description}: {data.num_classes} classes, {channels}x{height}x{width} images"
    )
    for split in ("train", "test"):
        counts = torch.bincount(data.split(split)[1], minlength=data.num_classes).tolist()
        if data.num_classes <= 10:
            per_class = ", ".join(f"{c} {n}" for c, n in zip(data.classes, counts, strict=True))
        else:
            per_class = f"{min(counts)} to {max(counts)} per class"
        print(f"  {split:5s} {sum(counts):6d} images ({per_class})")
    if args.npz is None:
        print(f"train on it: latentboost-lab train --dataset {args.path}")
        return 0
    arrays = {}
    for split in ("train", "test"):
        x, y = data.split(split)
        x = x.permute(0, 2, 3, 1).numpy()  # the documented layout: (N, H, W) or (N, H, W, C)
        arrays[f"x_{split}"] = x[..., 0] if channels == 1 else x
        arrays[f"y_{split}"] = y.numpy()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, classes=np.array(data.classes), **arrays)
    atomic_write(args.npz, buffer.getvalue())
    print(f"wrote {args.npz}; train on it: latentboost-lab train --dataset {args.npz}")
    return 0


def _reading_arg(text: str) -> str:
    """``type=`` of train --reading: checked at parse time, like every other option."""
    from .recipes import resolve_reading

    try:
        resolve_reading(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def cmd_train(args) -> int:
    from .training import check_writable_path

    if args.reading and args.loss != "latentboost":
        raise ValueError(f"--reading applies to --loss latentboost, not --loss {args.loss}")

    prefix = Path(args.out)
    _writable_folder("--out", prefix.parent)  # fail now, not after training
    check_writable_path("--out", prefix.with_suffix(".json"))
    if args.checkpoint or args.resume:
        args.fit_extra = {"checkpoint": prefix.with_suffix(".pt"), "resume": args.resume}
    data = _load(args)
    model, loss, history = _train_arm(args, data, args.loss, args.lam)
    if data.info.group:  # a super-class task: the history says which
        history.config["group"] = data.info.group
    history.to_json(prefix.with_suffix(".json"))
    last = history.last
    print(
        f"{args.loss}: {history.epochs_to_stop} epochs, test_acc {last.get('test_acc', float('nan')):.4f}; "
        f"history in {prefix.with_suffix('.json')}"
    )
    return 0


def cmd_site(args) -> int:
    from .site import build_site

    print(f"built: {build_site(args.out, quiet=False)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        commands = {"demo": cmd_demo, "data": cmd_data, "train": cmd_train}
        commands |= {"compare": cmd_compare, "ood": cmd_ood, "merge": cmd_merge}
        commands |= {"site": cmd_site}
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line for people; the traceback with --debug
        if args.debug:
            raise
        message = str(err).strip() or type(err).__name__
        print(f"latentboost-lab {args.command}: error: {message}", file=sys.stderr)
        return 1
