"""The resolution check: energy per shell against a 2x finer run, on short runs that pass and fail."""
import pytest

from workbench.data.navier_stokes import kolmogorov_config
from workbench.data.resolution import resolution_check
from workbench.errors import ConfigError


def test_resolved_data_are_within_five_percent_of_a_finer_run_up_to_the_window_top():
    # 32² at nu = 0.02: every shell up to 8 (the window top of a 16²-learning grid, 7, plus one) within 5 %
    r = resolution_check(kolmogorov_config(n=32, nu=0.02, warmup=2.0), s_top=8, t_run=1.0)
    assert r.fine_n == 64 and r.k.tolist() == list(range(1, 9))
    assert r.resolved(0.05), (r.max_deviation, r.ratio.tolist())
    assert abs(float(r.ratio[0]) - 1) < 1e-3  # the energy-holding scales agree closely


def test_under_resolved_data_fail_the_check():
    # the same grid at nu = 2e-3 (the default viscosity) piles energy up near its cutoff
    r = resolution_check(kolmogorov_config(n=32, nu=2e-3, warmup=2.0), s_top=8, t_run=1.0)
    assert not r.resolved(0.05), r.ratio.tolist()
    assert r.worst_shell >= 7 and float(r.ratio[r.worst_shell - 1]) > 1.05  # excess energy, near the cutoff


def test_resolution_check_validates():
    cfg = kolmogorov_config(n=32)
    with pytest.raises(ConfigError, match=r"s_top: must be in \[1, 10\]"):
        resolution_check(cfg, s_top=12)
    with pytest.raises(ConfigError, match="factor"):
        resolution_check(cfg, s_top=5, factor=1)


def test_fine_run_may_take_a_smaller_step():
    # halving the fine run's dt changes nothing beyond IF-RK4's (tiny) time error
    cfg = kolmogorov_config(n=16, nu=0.05, warmup=0.0)
    a = resolution_check(cfg, s_top=5, t_run=0.4, record_dt=0.2)
    b = resolution_check(cfg, s_top=5, t_run=0.4, record_dt=0.2, fine_dt=0.005)
    assert float((a.ratio - b.ratio).abs().max()) < 1e-4
    with pytest.raises(ConfigError, match="fine_dt: must divide dt"):
        resolution_check(cfg, s_top=5, fine_dt=0.003)
