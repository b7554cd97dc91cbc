"""The alpha/beta/lambda schedules: values at several epochs and argument checks."""

from __future__ import annotations

import math
import pickle
from functools import partial

import pytest

from latentboost_lab import schedules


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0, 1.0),
        (1, math.exp(-0.05)),
        (10, math.exp(-0.5)),
        (40, math.exp(-2.0)),
        (46, math.exp(-2.3)),
        (47, 0.1),
        (100, 0.1),
    ],
)
def test_alpha_defaults(epoch, expected):
    assert schedules.alpha_schedule(epoch) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("epoch", "expected"), [(0, 0.5), (1, 0.55), (10, 1.0), (30, 2.0), (31, 2.0), (500, 2.0)]
)
def test_beta_defaults(epoch, expected):
    assert schedules.beta_schedule(epoch) == pytest.approx(expected, rel=1e-12)


def test_alpha_and_beta_constants_are_configurable():
    assert schedules.alpha_schedule(2, alpha0=2.0, k_alpha=0.5, alpha_min=0.0) == pytest.approx(
        2 * math.exp(-1)
    )
    assert schedules.alpha_schedule(2, alpha0=2.0, k_alpha=0.5, alpha_min=1.5) == 1.5
    assert schedules.beta_schedule(3, beta0=1.0, k_beta=0.25, beta_max=10.0) == 1.75
    assert schedules.beta_schedule(3, beta0=1.0, k_beta=0.25, beta_max=1.5) == 1.5


def test_lambda_schedules():
    warmup = partial(schedules.linear_warmup, start=0.0, end=0.75, epochs=5)
    assert [warmup(e) for e in (0, 1, 5, 9)] == pytest.approx([0.0, 0.15, 0.75, 0.75])
    cos = partial(schedules.cosine, start=1.0, end=0.5, epochs=4)
    assert [cos(e) for e in (0, 2, 4, 8)] == pytest.approx([1.0, 0.75, 0.5, 0.5])
    stepped = partial(schedules.step, values=[0.25, 0.5, 0.75], milestones=[5, 10])
    assert [stepped(e) for e in (0, 4, 5, 9, 10, 50)] == [0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    assert schedules.constant(7, value=0.5) == 0.5


def test_configured_schedules_pickle():
    warmup = partial(schedules.linear_warmup, start=0.0, end=0.75, epochs=5)
    assert pickle.loads(pickle.dumps(warmup))(2) == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: schedules.alpha_schedule(-1), "epoch"),
        (lambda: schedules.alpha_schedule(1.5), "epoch"),
        (lambda: schedules.alpha_schedule(0, alpha0=-1.0), "alpha0"),
        (lambda: schedules.alpha_schedule(0, k_alpha=float("nan")), "k_alpha"),
        (lambda: schedules.beta_schedule(0, beta_max=-2.0), "beta_max"),
        (lambda: schedules.linear_warmup(0, 0.0, 1.0, epochs=0), "epochs"),
        (lambda: schedules.cosine(0, 0.0, float("inf"), epochs=3), "end"),
        (lambda: schedules.step(0, values=[0.1], milestones=[3]), "values"),
        (lambda: schedules.step(0, values=[0.1, 0.2, 0.3], milestones=[5, 5]), "milestones"),
    ],
)
def test_bad_arguments_name_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()
