"""Argument checks shared by the whole package.

Every public function validates what it is given and raises ``ValueError`` (or ``TypeError``
for a wrong type) with a message that names the argument and says what was expected, so that a
student sees ``latent must be a 2-D tensor (batch, width), got shape (64,)`` instead of a
traceback from deep inside torch.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch


def check_in_range(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is a finite real number inside the given interval."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(f"{name} must be in {interval}, got {value}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_latent(latent, name: str = "latent", *, values: bool = True) -> torch.Tensor:
    """A 2-D floating-point tensor (batch, width) with finite entries.

    ``values=False`` checks the type, shape and dtype only: no tensor value is read on the host
    (no device sync), as the training step needs (see :mod:`latentboost_lab.losses.base`)."""
    if not isinstance(latent, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(latent).__name__}")
    if latent.dim() != 2:
        raise ValueError(
            f"{name} must be a 2-D tensor (batch, width), got shape {tuple(latent.shape)}"
        )
    if not latent.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {latent.dtype}")
    if values and not torch.isfinite(latent).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return latent


def check_labels(
    labels, n: int | None = None, name: str = "labels", *, values: bool = True
) -> torch.Tensor:
    """A 1-D integer tensor of non-negative class indices, of length ``n`` when given
    (``values=False``: the type, shape and dtype only, without reading a value)."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of integer class indices, got {type(labels).__name__}"
        )
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer class indices (torch.long), got dtype {labels.dtype}"
        )
    if labels.dim() != 1:
        raise ValueError(f"{name} must be a 1-D tensor, got shape {tuple(labels.shape)}")
    if n is not None and labels.shape[0] != n:
        raise ValueError(f"{name} must have one entry per sample ({n}), got {labels.shape[0]}")
    if values and labels.numel() and int(labels.min()) < 0:
        raise ValueError(
            f"{name} must be non-negative class indices, got minimum {int(labels.min())}"
        )
    return labels


# --- argparse types: the command line validates its options with the same rules --------------


def _argparse_type(convert, what: str):
    """Wrap ``convert(text)`` so argparse reports ``argument --x: expected WHAT, got 'text'``."""
    import argparse

    def parse(text: str):
        try:
            return convert(text)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from err

    parse.__name__ = what  # argparse names the type in its message when the conversion fails
    return parse


def _int_at_least(low: int):
    return _argparse_type(lambda text: check_int("value", int(text), low), f"an integer >= {low}")


def _float_in(low, high, low_inclusive=True, high_inclusive=True, what=""):
    return _argparse_type(
        lambda text: check_in_range(
            "value",
            float(text),
            low,
            high,
            low_inclusive=low_inclusive,
            high_inclusive=high_inclusive,
        ),
        what,
    )


#: ``type=`` for argparse options.
positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)
positive_float = _float_in(0.0, None, low_inclusive=False, what="a number > 0")
unit_float = _float_in(0.0, 1.0, what="a number in [0, 1]")


def comma_list(item_type, what: str):
    """``type=`` for a comma-separated list, e.g. ``--arms ce,latentboost`` or ``--lam 0.5,0.75``."""

    def convert(text: str):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise ValueError("empty list")
        return [item_type(item) for item in items]

    return _argparse_type(convert, f"a comma-separated list of {what}")
