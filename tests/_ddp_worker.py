"""Run by tests/test_distributed.py under ``torchrun --nproc-per-node 2`` (gloo, CPU).

Writes, per rank, what the test compares with the single-process run on the concatenated batch:
the loss value and the gradient of this rank's input rows (scenario ``rows``), and the model's
parameters and loss values over two training steps under DistributedDataParallel (``train``).
The inputs come from ``tests/_ddp_cases.py``, which the test imports too.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ddp_cases import (  # noqa: E402
    FIT_LOSSES,
    LOSSES,
    STEPS,
    DigitsModel,
    RowsData,
    fit_case,
    make_loss,
    make_model,
    rows_case,
)

from latentboost_lab import distributed  # noqa: E402


def main(out: Path) -> None:
    distributed.init_from_env("gloo")
    rank, n = distributed.rank(), distributed.world_size()
    result = {}
    for name in LOSSES:
        # 1. The loss on given rows: value and gradient of this rank's rows.
        logits, latent, labels = rows_case()
        sizes = distributed.shard_sizes(len(labels), n)
        start, stop = sum(sizes[:rank]), sum(sizes[: rank + 1])
        mine_logits = logits[start:stop].clone().requires_grad_(True)
        mine_latent = latent[start:stop].clone().requires_grad_(True)
        loss = distributed.GlobalBatchLoss(make_loss(name))
        value = loss(mine_logits, mine_latent, labels[start:stop], 0)
        value.backward()
        result[name, "rows"] = {
            "value": value.detach(),
            "logits_grad": mine_logits.grad,
            "latent_grad": mine_latent.grad,
            "start": start,
            "stop": stop,
        }
        # 2. Two steps of training under DDP.
        model = distributed.wrap_model(make_model(), "cpu")
        objective = distributed.GlobalBatchLoss(make_loss(name))
        params = list(model.parameters()) + list(objective.parameters())
        optimizer = torch.optim.Adam(params, lr=1e-2)
        values = []
        for step, batch in enumerate(distributed.ShardedData(RowsData()).batches("train")):
            logits_, latent_ = model(batch.x)
            value = objective(logits_, latent_, batch.y, step)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            values.append(value.detach())
        assert step + 1 == STEPS
        result[name, "train"] = {
            "values": torch.stack(values),
            "params": [p.detach().clone() for p in params],
        }
    # 3. fit itself under torchrun: sharded batches, global loss, rank 0 checkpoints.
    for name in FIT_LOSSES:
        history, model = fit_case(name, checkpoint=out / f"{name}.pt")
        result[name, "fit"] = {
            "epochs": history.epochs,
            "params": [p.detach().clone() for p in model.parameters()],
            "checkpoint_written": (out / f"{name}.pt").exists(),
        }
    # 4. a model with BatchNorm: fit warns that the shards are normalised apart
    import warnings

    from latentboost_lab import load_dataset
    from latentboost_lab.training import fit

    bn_model = DigitsModel()
    bn_model.body.insert(2, torch.nn.BatchNorm1d(32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(bn_model, load_dataset("digits", seed=0), epochs=1, batch_size=400, progress=False)
    result["batchnorm_warning"] = [str(w.message) for w in caught if "BatchNorm" in str(w.message)]
    torch.save(result, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
