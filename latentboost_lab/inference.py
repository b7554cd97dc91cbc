"""Running a model over data: the core that training, evaluation, the cluster index, the OOD
scores and the metrics all use. A model of this package returns ``(logits, latent)`` from
``forward(x)``; :func:`model_outputs` checks that pair, :func:`embed` runs a whole split.
(Both were in :mod:`latentboost_lab.metrics`, which still re-exports them.)
"""

from __future__ import annotations

import torch

from ._checks import check_choice, check_int

__all__ = ["embed", "model_outputs"]


def model_outputs(output, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits (n, classes), latent (n, width))`` from a model's output, or a clear error for
    a model that does not return that pair (a plain classifier returns the logits only)."""
    if not (isinstance(output, (tuple, list)) and len(output) == 2):
        raise ValueError(
            "model must return (logits, latent) from forward(x), like the models of "
            f"latentboost_lab.models; got {type(output).__name__}"
            + (f" of shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else "")
        )
    logits, latent = output
    for name, value in (("logits", logits), ("latent", latent)):
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[0] != n:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"model must return a 2-D {name} ({n}, width), got shape {shape}")
    return logits, latent


@torch.no_grad()
def embed(model, data, split: str = "test", batch_size: int = 1024, return_logits: bool = False):
    """Latents (and labels, and optionally logits) of a whole split, as float32 tensors.

    Runs ``model(data.normalize(x)) -> (logits, latent)`` batch by batch on ``data.split(split)``
    under ``no_grad`` with every module in eval mode (BatchNorm uses its running statistics,
    dropout is off), then puts each module back in the train/eval mode it was in.
    Returns ``(latent, labels)`` or ``(latent, labels, logits)``, on the data's device.

    Memory: one float32 copy of the outputs, ``n x (width + classes)`` (filled in place, never
    concatenated), plus the model's activations for one batch; lower ``batch_size`` to lower
    the peak. Measured as the peak resident memory one call adds on the CPU (one thread,
    ``python tests/_memory_probe.py embed 60000 --model small_cnn [--batch-size 256]``):
    SmallCNN over 60,000 28x28 images, 250 MiB with the default ``batch_size=1024`` and 71 MiB
    with 256, of which the outputs are 32 MiB. tests/test_robustness.py checks a bound with a
    one-layer model (measured 40-64 MiB).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"model must be an nn.Module whose forward(x) returns (logits, latent), "
            f"got {type(model).__name__}"
        )
    if not (hasattr(data, "split") and hasattr(data, "normalize")):
        raise TypeError(f"data must be a TensorData (see load_dataset), got {type(data).__name__}")
    check_choice("split", split, ("train", "val", "test"))
    batch_size = check_int("batch_size", batch_size, 1)
    check_choice("return_logits", return_logits, (True, False))
    images, labels = data.split(split)
    weights = next(model.parameters(), None)
    if weights is not None and weights.device != images.device:
        raise ValueError(
            f"model is on {weights.device} but data is on {images.device}: move the model "
            "with model.to(data.device) (fit does this)"
        )
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    n = images.shape[0]
    latent = logits = None
    try:
        # The outputs are filled in place (not collected and concatenated), so that at its peak
        # the call holds one copy of them, plus one batch's activations.
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batch_logits, batch_latent = model_outputs(
                model(data.normalize(images[start:stop])), stop - start
            )
            if latent is None:
                latent = images.new_empty((n, batch_latent.shape[1]), dtype=torch.float32)
                logits = images.new_empty((n, batch_logits.shape[1]), dtype=torch.float32)
            latent[start:stop] = batch_latent
            logits[start:stop] = batch_logits
    finally:
        for module, training in modes:
            module.training = training
    if latent is None:  # an empty split: keep the widths when the model tells them
        width = int(getattr(model, "latent_dim", 0))
        classes = int(getattr(getattr(model, "classifier", None), "out_features", 0))
        latent = torch.empty(0, width, device=labels.device)
        logits = torch.empty(0, classes, device=labels.device)
    labels = labels.long()
    return (latent, labels, logits) if return_logits else (latent, labels)
