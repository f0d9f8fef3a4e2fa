"""Time grids: steps+1 points, exact endpoints, no zero-length step, shift applied once."""
import pytest
import torch

from workbench import interpolants, schedules
from workbench.errors import ConfigError

GAUSSIAN = ["linear", "trig", "vp", "ve", "subvp", "sb", "one_sided"]


@pytest.mark.parametrize("sched", schedules.names())
@pytest.mark.parametrize("interp", GAUSSIAN)
@pytest.mark.parametrize("steps", [1, 2, 7, 50])
def test_grid_contract(sched, interp, steps):
    I = interpolants.get(interp)
    for t0, t1 in ((0.0, 1.0), (0.013, 0.987)):
        if sched == "explicit":  # the grid is given point by point; its own checks are in tests/solvers/test_fit_grid.py
            pts = (t0 + (t1 - t0) * torch.linspace(0, 1, steps + 1, dtype=torch.float64) ** 2).tolist()
            pts[-1] = t1
            g = schedules.get(sched, times=pts).grid(steps, I, t0, t1)
        else:
            g = schedules.get(sched).grid(steps, I, t0, t1)
        assert g.dtype == torch.float64 and g.shape == (steps + 1,)
        assert float(g[0]) == t0 and float(g[-1]) == t1      # exact endpoints, no float drift
        assert bool((g[1:] > g[:-1]).all())                  # no zero-length or backward step


def test_uniform_is_linspace_and_shift_one_is_identity():
    I = interpolants.get("linear")
    u = schedules.get("uniform").grid(10, I)
    assert torch.equal(u, torch.linspace(0, 1, 11, dtype=torch.float64))
    assert torch.allclose(schedules.get("shift", shift=1.0).grid(10, I), u, atol=1e-15)
    s3 = schedules.get("shift", shift=3.0).grid(10, I)
    s = 1 - u
    assert torch.allclose(s3, 1 - 3 * s / (1 + 2 * s), atol=1e-15)  # applied exactly once


def test_logsnr_grid_is_uniform_in_lambda():
    I = interpolants.get("vp")
    g = schedules.get("logsnr").grid(12, I)
    lam = I.log_snr(g[:-1])  # λ(1) = +∞ for VP; interior spacing is constant
    d = lam[1:] - lam[:-1]
    assert torch.allclose(d[1:-1], d[1:-1].mean().expand_as(d[1:-1]), rtol=1e-8)


def test_edm_grid_follows_rho_formula():
    I = interpolants.get("ve")  # noise-to-signal ratio = α for VE
    g = schedules.get("edm", rho=7.0, sigma_ceiling=80.0, sigma_floor=0.002).grid(8, I)
    sig = I.alpha(g)
    smax, smin = 50.0, 0.01
    i = torch.arange(9, dtype=torch.float64)
    expected = (smax ** (1 / 7) + i / 8 * (smin ** (1 / 7) - smax ** (1 / 7))) ** 7
    assert torch.allclose(sig, expected, rtol=1e-8)


def test_schedule_errors():
    I = interpolants.get("linear")
    with pytest.raises(ConfigError, match="steps"):
        schedules.get("uniform").grid(0, I)
    with pytest.raises(ConfigError, match="rho"):
        schedules.get("edm", rho=0)
    with pytest.raises(ConfigError, match="shift"):
        schedules.get("shift", shift=-2)
    with pytest.raises(ConfigError, match="valid names are"):
        schedules.get("cosine-ish")
    with pytest.raises(ConfigError, match="not monotone.*uniform"):
        schedules.get("edm").grid(5, interpolants.get("mirror"))
