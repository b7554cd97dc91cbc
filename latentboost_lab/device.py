"""Choosing the device and seeding: the two things every run does first."""

from __future__ import annotations

import random

import numpy as np
import torch


def select_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` or None: CUDA if available, else Apple's MPS, else the CPU; otherwise the
    device named (checked to exist, with a clear error when it does not)."""
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device is {str(device)!r} but CUDA is not available here; use device='cpu' or 'auto'"
        )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError(
            "device is 'mps' but MPS is not available here; use device='cpu' or 'auto'"
        )
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices), so that the same seed gives the same run."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeding the legacy global state is the point)
    torch.manual_seed(seed)
