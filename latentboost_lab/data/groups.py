"""Super-class tasks: a data set's classes grouped into super-classes (issue 18, the paper's open
question 3: classes that are unions of sub-classes, not one sphere).

A model trains on the super-class labels only. The original labels travel with the data as the
hidden sub-class labels (``TensorData.sub_labels(split)``), for evaluation only: how much of the
sub-structure does the latent keep (:mod:`latentboost_lab.subclasses`).

The named groupings (``load_dataset(name, group=...)``, ``GROUPINGS``):

- ``fmnist_super`` (Fashion-MNIST, 3 super-classes): ``tops`` = T-shirt/top, Pullover, Coat,
  Shirt; ``footwear`` = Sandal, Sneaker, Ankle boot; ``other`` = Trouser, Dress, Bag. Our
  choice: the three classes that are neither tops nor footwear are grouped rather than kept as
  super-classes of their own, so that every super-class is a union of sub-classes (a
  one-sub-class super-class has no sub-structure to recover or lose). The groups differ in
  how far apart their sub-classes lie: ``tops`` holds Fashion-MNIST's most confused classes
  (Shirt, T-shirt/top, Pullover, Coat), ``other`` three that are far apart.
- ``cifar10_vehicles_animals`` (CIFAR-10, 2 super-classes): ``vehicles`` = airplane, automobile,
  ship, truck; ``animals`` = bird, cat, deer, dog, frog, horse.
- ``digits_parity`` (scikit-learn's digits, 2 super-classes): ``even`` = 0, 2, 4, 6, 8; ``odd`` =
  1, 3, 5, 7, 9. A small task that needs no download, for tests and quick notebooks.

Your own grouping: a :class:`Grouping`, or a dict ``{super-class name: [class names]}`` that puts
every class of the data set in exactly one super-class (``load_dataset("my.npz",
group={"a": ["x", "y"], "b": ["z"]})``).

Labels: super-classes are numbered in the grouping's order; the sub-class labels are the data
set's own labels (``info.sub_classes`` are its class names, in its label order), and
``info.super_of_sub[s]`` is the super-class of sub-class ``s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["GROUPINGS", "Grouping", "resolve_grouping"]


@dataclass(frozen=True)
class Grouping:
    """Super-classes as groups of a data set's class names.

    name: the grouping's name (recorded in ``info.group``).
    groups: ``((super-class name, (class name, ...)), ...)`` in super-class label order.
    dataset: the built-in data set it groups (``None``: any data set whose classes fit).
    """

    name: str
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    dataset: str | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """The super-class names, in label order."""
        return tuple(name for name, _ in self.groups)

    def super_of_sub(self, classes: tuple[str, ...]) -> np.ndarray:
        """The super-class label of each of ``classes`` (a data set's class names, in its label
        order), as int64; ValueError naming ``group`` unless the grouping puts every one of
        them in exactly one super-class."""
        classes = tuple(classes)
        where = f"group {self.name!r}"
        if len(self.groups) < 2:
            raise ValueError(f"{where} must have at least 2 super-classes, got {len(self.groups)}")
        names = [name for name, _ in self.groups]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{where}: super-class names must be distinct, got repeats {repeated}")
        mapping = np.full(len(classes), -1, dtype=np.int64)
        index = {c: i for i, c in enumerate(classes)}
        for label, (super_name, members) in enumerate(self.groups):
            if not members:
                raise ValueError(f"{where}: super-class {super_name!r} holds no class")
            unknown = [m for m in members if m not in index]
            if unknown:
                raise ValueError(
                    f"{where}: super-class {super_name!r} names {unknown}, which are not "
                    f"classes of the data set; its classes are {list(classes)}"
                )
            for member in members:
                if mapping[index[member]] != -1:
                    raise ValueError(
                        f"{where}: class {member!r} is in two super-classes "
                        f"({self.groups[mapping[index[member]]][0]!r} and {super_name!r})"
                    )
                mapping[index[member]] = label
        left_out = [classes[i] for i in np.flatnonzero(mapping == -1)]
        if left_out:
            raise ValueError(
                f"{where}: the classes {left_out} are in no super-class; every class of the "
                "data set must be in exactly one"
            )
        return mapping


_FASHION_SUPER = Grouping(
    "fmnist_super",
    (
        ("tops", ("T-shirt/top", "Pullover", "Coat", "Shirt")),
        ("footwear", ("Sandal", "Sneaker", "Ankle boot")),
        ("other", ("Trouser", "Dress", "Bag")),
    ),
    dataset="fashion_mnist",
)
_CIFAR10_VEHICLES_ANIMALS = Grouping(
    "cifar10_vehicles_animals",
    (
        ("vehicles", ("airplane", "automobile", "ship", "truck")),
        ("animals", ("bird", "cat", "deer", "dog", "frog", "horse")),
    ),
    dataset="cifar10",
)
_DIGITS_PARITY = Grouping(
    "digits_parity",
    (("even", ("0", "2", "4", "6", "8")), ("odd", ("1", "3", "5", "7", "9"))),
    dataset="digits",
)

GROUPINGS: dict[str, Grouping] = {
    g.name: g for g in (_FASHION_SUPER, _CIFAR10_VEHICLES_ANIMALS, _DIGITS_PARITY)
}


def resolve_grouping(group, dataset: str | None) -> Grouping:
    """A :class:`Grouping` from ``group``: a name of :data:`GROUPINGS`, a Grouping, or a dict
    ``{super-class name: [class names]}``. ``dataset`` is the built-in data set's name (None
    for your own data): a named grouping must be made for it."""
    if isinstance(group, Grouping):
        grouping = group
    elif isinstance(group, str):
        if group not in GROUPINGS:
            raise ValueError(
                f"group must be one of {sorted(GROUPINGS)}, a Grouping or a dict "
                f"{{super-class: [class names]}}, got {group!r}"
            )
        grouping = GROUPINGS[group]
    elif isinstance(group, Mapping):
        groups = []
        for super_name, members in group.items():
            if isinstance(members, str) or not all(isinstance(m, str) for m in members):
                raise TypeError(
                    f"group: super-class {super_name!r} must map to a list of class names "
                    f"(strings), got {members!r}"
                )
            groups.append((str(super_name), tuple(members)))
        grouping = Grouping("custom", tuple(groups))
    else:
        raise TypeError(
            f"group must be one of {sorted(GROUPINGS)}, a Grouping or a dict "
            f"{{super-class: [class names]}}, got {type(group).__name__}"
        )
    if grouping.dataset is not None and grouping.dataset != dataset:
        made_for = [n for n, g in GROUPINGS.items() if g.dataset == dataset]
        raise ValueError(
            f"group {grouping.name!r} groups the classes of {grouping.dataset}, not of "
            f"{dataset or 'your own data'}"
            + (f"; groupings for {dataset}: {made_for}" if made_for else "")
        )
    return grouping
