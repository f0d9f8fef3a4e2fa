"""The per-attempt log of an adaptive solve agrees with the solver's own run and with the exact flow."""
import math

import pytest
import torch

from workbench import solvers
from workbench.errors import ConfigError
from workbench.samplers import adaptive_log


def test_log_totals_equal_the_solver_run_and_the_exact_answer(linear_reference):
    I, field, x0, ref = linear_reference
    kw = dict(rtol=1e-7, atol=1e-7, first_step=0.5)  # a too-large first step forces rejections
    log = adaptive_log("dopri5", field, x0, 2000, **kw)
    res = solvers.get("dopri5", **kw).sample(field, x0, 2000)
    assert log.rejected >= 1 and log.accepted >= 5
    assert log.accepted == res.info["accepted"] and log.rejected == res.info["rejected"]
    assert log.nfe == res.nfe and log.nfe_after == sorted(log.nfe_after)
    assert torch.equal(log.x, res.x)
    assert float((log.x - ref).norm(dim=1).max()) < 1e-5
    # accepted iff the scaled error estimate is at most 1; accepted steps tile [0, 1] exactly
    for row in log.rows():
        assert math.isfinite(row["error"]) and row["accepted"] == (row["error"] <= 1.0)
    acc = [(t, h) for t, h, a in zip(log.t, log.h, log.accepted_mask) if a]
    assert acc[0][0] == 0.0 and sum(h for _, h in acc) == pytest.approx(1.0, abs=1e-12)
    for (t, h), (t2, _) in zip(acc, acc[1:]):
        assert t + h == pytest.approx(t2, abs=1e-12)


def test_tighter_tolerance_takes_more_steps_and_is_more_accurate(linear_reference):
    I, field, x0, ref = linear_reference
    loose = adaptive_log("dopri5", field, x0, 5000, rtol=1e-4, atol=1e-4)
    tight = adaptive_log("dopri5", field, x0, 5000, rtol=1e-8, atol=1e-8)
    assert tight.accepted > loose.accepted
    assert (tight.x - ref).norm(dim=1).mean() < (loose.x - ref).norm(dim=1).mean()


def test_non_adaptive_solver_is_refused(linear_reference):
    I, field, x0, _ = linear_reference
    with pytest.raises(ConfigError, match="solver"):
        adaptive_log("heun", field, x0, 10)
