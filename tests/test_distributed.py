"""One run across processes (issue 17, section 2): under ``torchrun`` with 2 CPU ranks (gloo),
the loss on the gathered global batch and the training it drives equal the single-process run on
the concatenated batch.

The worker (tests/_ddp_worker.py) and this file build the same rows, model and losses from
tests/_ddp_cases.py; the reference here is the plain single-process computation.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentboost_lab import distributed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ddp_cases import (  # noqa: E402
    FIT_LOSSES,
    LOSSES,
    STEPS,
    batch_rows,
    fit_case,
    make_loss,
    make_model,
    rows_case,
)

WORKER = Path(__file__).resolve().parent / "_ddp_worker.py"
N_RANKS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the 2 ranks wrote (one torchrun for every test here)."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    out = tmp_path_factory.mktemp("ddp")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(N_RANKS),
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(WORKER), str(out),
    ]  # fmt: skip
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(N_RANKS)]


@pytest.mark.parametrize("name", LOSSES)
def test_loss_on_gathered_rows_equals_single_process(ranks, name):
    logits, latent, labels = rows_case()
    logits.requires_grad_(True)
    latent.requires_grad_(True)
    value = make_loss(name)(logits, latent, labels, 0)
    value.backward()
    covered = torch.zeros(len(labels), dtype=torch.bool)
    for result in ranks:
        rows = result[name, "rows"]
        start, stop = rows["start"], rows["stop"]
        covered[start:stop] = True
        # every rank reports the single-process value of the whole batch
        torch.testing.assert_close(rows["value"], value.detach(), rtol=0, atol=1e-6)
        # its rows' gradient is the single-process one times the number of ranks: DDP's
        # averaging of the model gradients divides it again
        for key, full in (("logits_grad", logits.grad), ("latent_grad", latent.grad)):
            if full is None:  # cross-entropy does not read the latent
                assert name == "ce" and rows[key] is None
                continue
            torch.testing.assert_close(rows[key], N_RANKS * full[start:stop], rtol=0, atol=1e-6)
    assert covered.all() and ranks[0][name, "rows"]["stop"] - ranks[0][name, "rows"]["start"] == 7


@pytest.mark.parametrize("name", LOSSES)
def test_two_training_steps_equal_single_process(ranks, name):
    model, objective = make_model(), make_loss(name)
    params = list(model.parameters()) + list(objective.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-2)
    images, targets = rows_case(images=True)
    values = []
    for step, index in enumerate(batch_rows(targets, 0)[:STEPS]):
        logits, latent = model(images[index])
        value = objective(logits, latent, targets[index], step)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        values.append(value.detach())
    start = [p.detach().clone() for p in make_model().parameters()]
    for result in ranks:
        trained = result[name, "train"]
        torch.testing.assert_close(trained["values"], torch.stack(values), rtol=0, atol=1e-6)
        assert len(trained["params"]) == len(params)
        for got, want in zip(trained["params"], params, strict=True):
            torch.testing.assert_close(got, want.detach(), rtol=0, atol=1e-6)
    # the steps moved the model (the comparison above is not between two untrained copies)
    assert any(
        (p.detach() - s).abs().max() > 1e-3 for p, s in zip(model.parameters(), start, strict=True)
    )


@pytest.mark.parametrize("name", FIT_LOSSES)
def test_fit_under_torchrun_equals_single_process(ranks, name):
    """fit with 2 processes: the same epoch records (train loss, its parts, train and validation
    accuracy) and the same weights as fit in one process; the checkpoint is written once."""
    history, model = fit_case(name)
    for result in ranks:
        got = result[name, "fit"]
        assert len(got["epochs"]) == len(history.epochs) == 2
        for mine, want in zip(got["epochs"], history.epochs, strict=True):
            assert set(mine) == set(want)
            for key, value in want.items():
                if key.endswith("seconds"):
                    continue
                assert mine[key] == pytest.approx(value, rel=0, abs=1e-6), key
        for p, q in zip(got["params"], model.parameters(), strict=True):
            torch.testing.assert_close(p, q.detach(), rtol=0, atol=1e-5)
    # digits' training split is not a multiple of 50: the last batch is split unequally
    assert len(__import__("latentboost_lab").load_dataset("digits", seed=0).split("train")[1]) % 50
    assert ranks[0][name, "fit"]["checkpoint_written"]


def test_fit_warns_when_batchnorm_normalises_each_shard(ranks):
    for result in ranks:
        assert (
            result["batchnorm_warning"]
            and "not the single-process one" in result["batchnorm_warning"][0]
        )


def test_shard_sizes_cover_the_batch():
    for batch in range(1, 40):
        for n in range(1, 6):
            sizes = distributed.shard_sizes(batch, n)
            assert sum(sizes) == batch and max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="n_ranks"):
        distributed.shard_sizes(8, 0)


def test_sharded_data_concatenates_to_the_global_batches():
    from latentboost_lab.data import load_dataset

    data = load_dataset("digits", seed=0)
    # augmented: the augmentation's random draws must be the single-process ones too
    kwargs = dict(batch_size=16, epoch=3, seed=5, augment=True)
    shards = [list(distributed.ShardedData(data, rank=r, world_size=3).batches("train", **kwargs))
              for r in range(3)]  # fmt: skip
    n_batches = 0
    for batch, *pieces in zip(data.batches("train", **kwargs), *shards, strict=True):
        n_batches += 1
        for field in ("x", "y", "index"):
            assert torch.equal(
                torch.cat([getattr(p, field) for p in pieces]), getattr(batch, field)
            )
    assert n_batches > 1 and len(data.split("train")[1]) % 16 != 0  # a short last batch too
    sharded = distributed.ShardedData(data, rank=1, world_size=3)
    assert sharded.info is data.info and sharded.num_classes == data.num_classes
    val = [b.y for b in sharded.batches("val", 32, shuffle=False)]
    assert torch.equal(torch.cat(val), data.split("val")[1])  # evaluation sees whole splits
    with pytest.raises(ValueError, match="rank must lie in 0..2"):
        distributed.ShardedData(data, rank=3, world_size=3)
    with pytest.raises(ValueError, match="batch size of at least the number of processes"):
        next(distributed.ShardedData(data, rank=0, world_size=3).batches("train", batch_size=2))


def test_outside_a_process_group_nothing_changes():
    x = torch.randn(4, 3, requires_grad=True)
    assert distributed.gather_with_grad(x) is x
    assert distributed.world_size() == 1 and distributed.rank() == 0
    loss = make_loss("latentboost")
    logits, latent, labels = rows_case()
    wrapped = distributed.GlobalBatchLoss(make_loss("latentboost"))
    assert torch.equal(wrapped(logits, latent, labels, 0), loss(logits, latent, labels, 0))
    assert wrapped.lam == loss.lam and set(wrapped.parts) == set(loss.parts)
    model = make_model()
    assert distributed.wrap_model(model, "cpu") is model


def test_clear_errors():
    from latentboost_lab.losses.magnet import MagnetObjective

    with pytest.raises(ValueError, match="neighbourhood sampler"):
        distributed.GlobalBatchLoss(MagnetObjective())
    with pytest.raises(ValueError, match="sync_batchnorm=True needs GPUs"):
        distributed.wrap_model(make_model(), "cpu", sync_batchnorm=True)
    with pytest.raises(RuntimeError, match="torchrun"):
        saved = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE") if k in os.environ}
        try:
            distributed.init_from_env()
        finally:
            os.environ.update(saved)
