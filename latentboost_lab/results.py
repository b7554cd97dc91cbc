"""What a comparison records, and nothing that computes it: the runs.json document and its parts.

- :class:`History`: one run's epochs (what :func:`~latentboost_lab.training.fit` returns);
- :class:`Arm`: one arm of a comparison (a loss recipe, its λ and options, where the latent is
  taken), as written into ``runs.json``;
- :class:`Results`: a ``runs.json`` (every run's configuration, history and test metrics, the
  environment and the commands), read and saved under the lock of :mod:`.runstore`;
- :func:`merge_folders`: the runs of several folders of one comparison, in one.

This module imports nothing of the package but :mod:`.runstore` (files): the runner
(:mod:`.experiments`), the report (:mod:`.report`), the time estimate (:mod:`.estimate`) and
the launchers all import it, and it imports none of them (``tests/test_import_graph.py``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .runstore import atomic_write, locked_update, same_run

__all__ = [
    "Arm",
    "History",
    "Results",
    "arms_in",
    "merge_arms",
    "merge_folders",
    "run_key",
    "settings_difference",
]


@dataclass
class History:
    """What happened in a run, one dict per epoch (``train_loss``, the loss's parts,
    ``train_acc``, ``val_acc``, ``test_acc``, ``seconds``, ``lr``, ...).

    ``history["val_acc"]`` is the list of that value over the epochs.
    """

    epochs: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    best_epoch: int | None = None  # the epoch whose weights were kept (early stopping)
    stopped_early: bool = False
    interrupted: bool = False

    def __getitem__(self, key: str) -> list:
        return [record.get(key, math.nan) for record in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def epochs_to_stop(self) -> int:
        """How many epochs were trained (the figure the paper compares)."""
        return len(self.epochs)

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(asdict(self), indent=1, default=float)
        if path is not None:
            atomic_write(path, text.encode())
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> History:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Arm:
    """One arm of a comparison: a loss recipe, its λ and extra options, under a display name;
    ``latent`` is where the model's latent is taken (the same weights for every choice)."""

    name: str
    loss: str
    lam: float | None = None
    options: tuple[tuple[str, object], ...] = ()
    latent: str = "embedding"

    @property
    def classifier(self) -> str:
        """How the arm classifies: ``"head"`` (the softmax layer) or ``"clusters"`` (the Magnet
        method trains the latent only and classifies by the nearest clusters, its eq. 6)."""
        return "clusters" if self.loss == "magnet" else "head"

    @property
    def monitor(self) -> str:
        """The validation accuracy of the arm's own classifier (early stopping, epochs to reach
        the reference)."""
        return "val_cluster_acc" if self.classifier == "clusters" else "val_acc"

    def to_dict(self) -> dict:
        d = {"name": self.name, "loss": self.loss, "lam": self.lam, "options": dict(self.options)}
        if self.latent != "embedding":  # runs.json written before the choice existed stay equal
            d["latent"] = self.latent
        return d


def run_key(arm: Arm, seed: int) -> str:
    return f"{arm.name}/seed{seed}"


#: The lists of runs.json that each invocation appends to (its command line and its machine).
LOGS = ("commands", "environment")


class Results:
    """The runs of a comparison as stored in ``runs.json``: ``results.runs[key]`` is a dict with
    ``arm``, ``seed``, ``history`` (as :class:`~latentboost_lab.training.History`'s dict),
    ``test`` (final test metrics) and ``seconds``."""

    def __init__(self, document: dict, path: Path | None = None):
        self.document = document
        self.path = path
        # How many entries of "commands" and of "environment" are on disk already: the ones
        # after them are this process's, added to the file at the next save. Counted per list:
        # the two need not be as long as each other (a file edited by hand).
        self._saved_log = {"commands": 0, "environment": 0}

    @property
    def runs(self) -> dict[str, dict]:
        return self.document["runs"]

    @property
    def config(self) -> dict:
        return self.document["config"]

    @classmethod
    def load(cls, path: str | os.PathLike) -> Results:
        """Read ``runs.json`` (or the folder holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / "runs.json"
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{path} does not exist: no comparison has been run into {path.parent} yet"
            ) from err
        except (OSError, ValueError) as err:
            raise ValueError(f"{path} is not a readable runs.json ({err})") from err
        if not isinstance(document, dict) or "runs" not in document or "config" not in document:
            raise ValueError(f"{path} is not a runs.json written by run_experiment")
        results = cls(document, path)
        results._saved_log = {log: len(document.get(log, [])) for log in LOGS}
        return results

    def save(self) -> None:
        """Add this object's runs, arms, seeds and command to the file on disk, under a lock
        (:mod:`latentboost_lab.runstore`): runs that other processes added meanwhile are kept,
        and this object then holds them too. A run on disk already is not replaced."""

        def merge(disk: dict | None) -> dict:
            if disk is None:
                return self.document
            differ = settings_difference(
                disk["config"].get("fixed", {}), self.config.get("fixed", {})
            )
            if differ:
                raise ValueError(f"{self.path} now holds runs made with other settings ({differ})")
            for key, run in self.runs.items():
                disk["runs"].setdefault(key, run)
            config = disk["config"]
            config["arms"] = merge_arms(config.get("arms", []), self.config["arms"])
            config["seeds"] = sorted(set(config["seeds"]) | set(self.config["seeds"]))
            if "reference" in self.config:  # the report's reference arm, when one was chosen
                config["reference"] = self.config["reference"]
            for log in LOGS:
                disk.setdefault(log, []).extend(self.document.get(log, [])[self._saved_log[log] :])
            return disk

        self.document = locked_update(self.path, merge)
        self._saved_log = {log: len(self.document.get(log, [])) for log in LOGS}

    def history(self, key: str) -> History:
        return History(**self.runs[key]["history"])


def settings_difference(saved: dict, now: dict) -> str:
    """The settings (``ExperimentConfig.fixed()``) that differ, as "epochs: 2 there, 3 now";
    empty when they are the same."""
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    return ", ".join(f"{k}: {saved.get(k)!r} there, {now.get(k)!r} now" for k in differ)


def merge_arms(old: list[dict], new: list[dict]) -> list[dict]:
    """The arms of ``old`` then those of ``new`` not in it (by name)."""
    names = {a["name"] for a in old}
    return old + [a for a in new if a["name"] not in names]


def arms_in(results: Results, names: Iterable[str] | None = None) -> list[str]:
    """The arm names of ``results`` in their configured order (optionally only ``names``)."""
    order = [a["name"] for a in results.config.get("arms", [])]
    present = {r["arm"] for r in results.runs.values()}
    order = [n for n in order if n in present] + sorted(present - set(order))
    return [n for n in order if names is None or n in set(names)]


def merge_folders(out: str | os.PathLike, inputs: Sequence[str | os.PathLike], command: str):
    """Merge the ``runs.json`` of ``inputs`` into ``out/runs.json`` (its runs, when it exists,
    count as the first input) and return the merged :class:`Results`.

    Refused, before anything is written: an input without a ``runs.json``, folders made with
    other settings (named with the settings that differ), and a run found in two folders with
    different results (named). Equal copies of a run (but for the timing fields) are kept once:
    the first in the order given.
    """
    out = Path(out)
    if not inputs:
        raise ValueError("inputs: name at least one folder to merge")
    sources = [Path(p) for p in inputs]
    if (out / "runs.json").exists() and out.resolve() not in {p.resolve() for p in sources}:
        sources.insert(0, out)
    loaded = [Results.load(p) for p in sources]
    first = loaded[0]
    for other in loaded[1:]:
        differ = settings_difference(first.config.get("fixed", {}), other.config.get("fixed", {}))
        if differ:
            raise ValueError(
                f"merge: {other.path.parent} was made with other settings than "
                f"{first.path.parent} ({differ}); only folders of the same comparison merge"
            )
    runs: dict[str, dict] = {}
    where: dict[str, Path] = {}
    for results in loaded:
        for key, run in results.runs.items():
            if key in runs and not same_run(runs[key], run):
                raise ValueError(
                    f"merge: the run {key} is in {where[key]} and in {results.path.parent} with "
                    "different results; remove it from one of them (or keep the folders apart)"
                )
            if key not in runs:
                runs[key], where[key] = run, results.path.parent
    arms: list[dict] = []
    for results in loaded:
        arms = merge_arms(arms, results.config.get("arms", []))
    document = {
        "format": first.document.get("format", "latentboost_lab.runs/1"),
        "config": {
            **first.config,
            "arms": arms,
            "seeds": sorted({s for r in loaded for s in r.config.get("seeds", [])}),
        },
        "commands": [c for r in loaded for c in r.document.get("commands", [])] + [command],
        "environment": [e for r in loaded for e in r.document.get("environment", [])],
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)

    def replace(on_disk: dict | None) -> dict:
        # Another writer may have added a run to out since it was read: keep it too.
        for key, run in ((on_disk or {}).get("runs") or {}).items():
            if key not in document["runs"]:
                document["runs"][key] = run
        return document

    return Results(locked_update(out / "runs.json", replace), out / "runs.json")
