"""The step loops of the new samplers never synchronise with the host.

Start state and model outputs are a tensor subclass whose ``item``/``__bool__``/``__float__``/``tolist``/``numpy``
raise: every tensor derived from them inherits the trap, so a ``.item()`` or a tensor-valued ``if`` anywhere
in a step fails the test. Coefficients come from the (plain, CPU) grid, precomputed once per run.
"""
import pytest
import torch

from workbench import interpolants, solvers
from workbench.models.field import Field
from workbench.problems import PROBLEMS

BANNED = {torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.tolist, torch.Tensor.numpy,
          torch.Tensor.__float__, torch.Tensor.__int__, torch.Tensor.__index__, torch.Tensor.nonzero}


class SyncTrap(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in BANNED:
            raise AssertionError(f"host synchronisation in the step loop: {func}")
        return super().__torch_function__(func, types, args, kwargs or {})


def _field(kind):
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    g = prob.gmm

    def model(x, t):
        out = g.predict(x.as_subclass(torch.Tensor), t.as_subclass(torch.Tensor), I, kind)
        return out.as_subclass(SyncTrap)

    return Field(model, I, kind), prob, I


NAMES = [("dpmpp_2m", {}), ("dpmpp_3m", {}), ("dpmpp", {"order": 3, "predict": "noise"}), ("unipc", {"order": 3}),
         ("deis", {"order": 3}), ("dpm_solver_2", {}), ("dpm_solver_3", {}), ("pc", {}),
         ("time_shifted", {"offset": -0.01})]


@pytest.mark.parametrize("kind", ["noise", "x1", "velocity"])
@pytest.mark.parametrize("name,params", NAMES, ids=[n for n, _ in NAMES])
def test_step_loop_has_no_host_sync(name, params, kind):
    field, prob, I = _field(kind)
    x = prob.sample_start(I, 0.0, 8, torch.Generator().manual_seed(0)).as_subclass(SyncTrap)
    solver = solvers.get(name, **params)
    grid = solver.make_grid(field, 12 if solver.evals_per_step != 3 else 12, "logsnr")
    field.reset()
    steps = list(solver.iterate(field, x, grid, torch.Generator().manual_seed(0)))
    assert len(steps) == len(grid) - 1
    assert isinstance(steps[-1].x, SyncTrap)
    # the trap works: a .item() on a step's state raises
    with pytest.raises(AssertionError, match="host synchronisation"):
        steps[-1].x.sum().item()


def test_dpm_solver_v3_step_loop_has_no_host_sync():
    from workbench.solvers.dpm_solver_v3 import EMS

    field, prob, I = _field("noise")
    lam = torch.linspace(-6.0, 6.0, 20, dtype=torch.float64)
    r = torch.rand(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.1
    solver = solvers.get("dpm_solver_v3", ems=EMS(lam, r, r, r, r.cumsum(0), r.cumsum(0), r.cumsum(0)))
    x = prob.sample_start(I, 0.0, 8, torch.Generator().manual_seed(0)).as_subclass(SyncTrap)
    steps = list(solver.iterate(field, x, solver.make_grid(field, 10, "logsnr"), None))
    assert isinstance(steps[-1].x, SyncTrap) and len(steps) == 10


@pytest.mark.parametrize("kind", ["noise", "velocity"])
def test_nonstationary_step_loop_has_no_host_sync(kind):
    field, prob, I = _field(kind)
    c = solvers.linearize(solvers.get("unipc", order=3), field, 10, schedule="logsnr")
    solver = solvers.get("nonstationary", coefficients=c)
    x = prob.sample_start(I, 0.0, 8, torch.Generator().manual_seed(0)).as_subclass(SyncTrap)
    grid = solver.make_grid(field, 10)
    field.reset()
    steps = list(solver.iterate(field, x, grid, None))
    assert isinstance(steps[-1].x, SyncTrap) and len(steps) == 10
