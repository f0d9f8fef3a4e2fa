"""BDIA exact inversion against plain DDIM/Euler inversion on the exact 2-D mixture (float64).

Round trip: data x → ``invert`` → noise latent → ``regenerate`` → data; BDIA must return x to ≤ 1e-10 at every
NFE in 10–50, while the reversed-grid (approximate) inversion of DDIM/Euler leaves an error whose fitted slope
against the step count is 1 (O(h)). Orders of the new solvers (bdia γ=1: 2, bdia γ<1: 1, ddim: 1) are fitted
against the exact PF-ODE map.
"""
import pytest
import torch

from workbench import interpolants, solvers
from workbench.errors import ConfigError
from workbench.samplers import invert, regenerate

from .orders import slope


@pytest.fixture(scope="module")
def data(gmm2d):
    I = interpolants.get("linear")
    return I, gmm2d.field(I, "cpu", torch.float64), gmm2d.gmm.sample(128, torch.Generator().manual_seed(3))


@pytest.mark.parametrize("nfe", [10, 25, 50])
def test_bdia_round_trip_is_exact(data, nfe):
    I, field, x = data
    inv = invert("bdia", field, x, nfe)
    assert inv.exact and inv.nfe == nfe
    back = regenerate("bdia", field, inv)
    assert float((back - x).abs().max()) <= 1e-10
    # the latent really is at the noise end: it is far from the data and has the base law's scale
    assert float((inv.x - x).norm(dim=1).mean()) > 1.0


def test_bdia_gamma_half_round_trip_exact_at_few_steps(data):
    I, field, x = data
    s = solvers.get("bdia", gamma=0.5)
    back = regenerate(s, field, invert(s, field, x, 10))
    assert float((back - x).abs().max()) <= 1e-10


@pytest.mark.parametrize("name", ["ddim", "euler"])
def test_plain_inversion_is_only_first_order(data, name):
    I, field, x = data
    ns, errs = (10, 20, 40, 80), []
    for n in ns:
        inv = invert(name, field, x, n)
        assert not inv.exact
        errs.append(float((regenerate(name, field, inv) - x).norm(dim=1).mean()))
    p = slope(ns, errs)
    assert 0.8 <= p <= 1.2, (errs, p)
    assert errs[-2] > 1e-2  # at NFE 40 the approximate inverse is 1e8 x worse than BDIA's


def test_ddim_inversion_on_vp_is_first_order(gmm2d):
    I = interpolants.get("vp")
    field = gmm2d.field(I, "cpu", torch.float64)
    x = gmm2d.sample_target(I, 0.99, 64, torch.Generator().manual_seed(4))
    ns, errs = (10, 20, 40, 80), []
    for n in ns:
        inv = invert("ddim", field, x, n, t_end=0.99)
        errs.append(float((regenerate("ddim", field, inv) - x).norm(dim=1).mean()))
    assert 0.8 <= slope(ns, errs) <= 1.25, errs


@pytest.mark.parametrize("name,params,order,ns", [("bdia", {}, 2, (32, 64, 128)), ("ddim", {}, 1, (32, 64, 128))])
def test_new_solver_orders(vp_reference, name, params, order, ns):
    I, field, x0, ref = vp_reference
    s = solvers.get(name, **params)
    assert s.order == order
    errs = [float((s.sample(field, x0, n, schedule="logsnr", t_end=0.99).x - ref).norm(dim=1).mean()) for n in ns]
    assert abs(slope(ns, errs) - order) <= 0.3, errs


@pytest.mark.parametrize("name,params,order", [("bdia", {}, 2), ("bdia", {"gamma": 0.5}, 1)])
def test_bdia_orders_on_linear_path(linear_reference, name, params, order):
    I, field, x0, ref = linear_reference
    s = solvers.get(name, **params)
    assert s.order == order
    ns = (40, 80, 160)
    errs = [float((s.sample(field, x0, n).x - ref).norm(dim=1).mean()) for n in ns]
    assert abs(slope(ns, errs) - order) <= 0.3, errs


def test_invert_refuses_what_it_cannot_invert(data):
    I, field, x = data
    for name in ("euler_maruyama", "dopri5", "dpmpp_2m"):
        with pytest.raises(ConfigError, match="solver"):
            invert(name, field, x, 10)
    with pytest.raises(ConfigError, match="gamma"):
        solvers.get("bdia", gamma=0.0)
    with pytest.raises(ConfigError, match="inversion"):
        regenerate("bdia", field, invert("euler", field, x, 10))


def test_entry_points_ignore_a_budget_left_by_an_earlier_run(data):
    I, field, x = data
    solvers.get("euler").sample(field, x, 3)  # leaves a budget of 3 on the shared field (pre per-run counting)
    inv = invert("bdia", field, x, 10)
    assert inv.nfe == 10 and float((regenerate("bdia", field, inv) - x).abs().max()) <= 1e-10
