"""The fused step loop of the linear multistep log-SNR samplers equals the reference step-by-step path.

``LogSNRSolver.iterate_fused`` rewrites each update in the tensors a run holds (state, raw model output, a ring of
unscaled history entries ``x + alpha * raw``) and merges UniPC's corrector into the next predictor; the reference
(``solver.fused = False``) converts every output to D/ε̂ and applies predictor and corrector separately. Both must
agree to float64 rounding for every model output kind, at λ = ±∞ ends, and when a field mixes kinds.
"""
import pytest
import torch

from workbench import interpolants, solvers
from workbench.errors import ConfigError, NonFiniteError
from workbench.models.field import Field
from workbench.problems import PROBLEMS
from workbench.solvers.time_shift import ShiftedField

CONFIGS = [("dpmpp_2m", {}), ("dpmpp_3m", {}), ("dpmpp", {"order": 3, "predict": "noise"}),
           ("dpmpp_3m", {"third_order": "diffusers"}), ("unipc", {"order": 1}), ("unipc", {"order": 2}),
           ("unipc", {"order": 3}), ("unipc", {"order": 3, "predict": "noise"}), ("unipc", {"order": 2, "corrector": False}),
           ("deis", {"order": 3}), ("deis", {"order": 2, "predict": "data"})]
KINDS = ["noise", "x1", "velocity", "data_score"]


def _field(prob, I, kind):
    if kind == "data_score":
        return prob.field(I, "cpu", torch.float64)
    return Field(lambda x, t: prob.gmm.predict(x, t, I, kind), I, kind)


def _pair(name, params, run):
    """(fused result or exception type, reference result or exception type)."""
    out = []
    for fused in (True, False):
        s = solvers.get(name, **params)
        s.fused = fused
        try:
            out.append(run(s))
        except (ConfigError, NonFiniteError) as e:  # singular conversions at an end must fail the same way
            out.append(type(e))
    return out


@pytest.mark.parametrize("iname,t0,t1", [("vp", 0.0, 0.99), ("linear", 0.0, 1.0)])
@pytest.mark.parametrize("name,params", CONFIGS, ids=[f"{n}-{p}" for n, p in CONFIGS])
def test_fused_equals_reference(name, params, iname, t0, t1):
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get(iname)
    x0 = prob.sample_start(I, t0, 16, torch.Generator().manual_seed(0))
    compared = 0
    for kind in KINDS:
        field = _field(prob, I, kind)
        for n, sched in ((3, "uniform"), (12, "logsnr")):
            a, b = _pair(name, params, lambda s: s.sample(field, x0, n, schedule=sched, t_start=t0, t_end=t1,
                                                          return_trajectory=True))
            if isinstance(a, type) or isinstance(b, type):
                assert a == b, (kind, n, sched, a, b)
                continue
            assert a.orders == b.orders and a.nfe == b.nfe == n
            # every yielded state, not only the last: the ring buffers never alias a state handed out
            rel = ((a.trajectory - b.trajectory).norm() / b.trajectory.norm()).item()
            assert rel < 1e-11, (kind, n, sched, rel)
            compared += 1
    assert compared >= 4  # noise/x1/data_score models all ran on the finite-λ grid at least


def test_fused_differs_from_a_wrong_plan():
    """The comparison can fail: a different order on the same grid is far away."""
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    field = _field(prob, I, "noise")
    a = solvers.get("unipc", order=3).sample(field, x0, 8, schedule="logsnr", t_end=0.99).x
    b = solvers.get("unipc", order=2).sample(field, x0, 8, schedule="logsnr", t_end=0.99).x
    assert ((a - b).norm() / b.norm()).item() > 1e-6


@pytest.mark.parametrize("name,params", [("dpmpp_3m", {}), ("unipc", {"order": 3}), ("deis", {"order": 3})])
def test_time_shifted_field_mixing_kinds(name, params):
    """A shifted field returns the inner kind where the shift is clipped away and (D, s) elsewhere."""
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    for kind in ("noise", "x1"):
        for off in (-0.01, lambda t: 0.0 if t < 0.3 else -0.01):
            field = ShiftedField(_field(prob, I, kind), off)
            grid = solvers.get(name, **params).make_grid(field, 10, "uniform", 0.0, 1.0)
            a, b = _pair(name, params, lambda s: list(s.iterate(field, x0, grid))[-1].x)
            assert ((a - b).norm() / b.norm()).item() < 1e-11


def test_float32_and_gradients():
    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    x0 = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    field = _field(prob, I, "noise")
    for name, params in [("dpmpp_2m", {}), ("unipc", {"order": 3})]:
        a, b = _pair(name, params, lambda s: s.sample(field, x0.float(), 10, schedule="logsnr", t_end=0.99).x)
        assert a.dtype == torch.float32 and ((a - b).norm() / b.norm()).item() < 1e-5
        # gradients flow through the fused update (no out= on tensors that require grad)
        grads = []
        for fused in (True, False):
            x = x0.clone().requires_grad_(True)
            s = solvers.get(name, **params)
            s.fused = fused
            s.sample(field, x, 10, schedule="logsnr", t_end=0.99).x.square().sum().backward()
            grads.append(x.grad)
        assert ((grads[0] - grads[1]).norm() / grads[1].norm()).item() < 1e-10


def test_nan_is_reported_at_its_step():
    I = interpolants.get("vp")
    grid = torch.linspace(0.0, 0.99, 11, dtype=torch.float64)

    def blows_up(x, t):
        return torch.where(t[:, None] > 0.45, torch.full_like(x, float("nan")), 0.1 * x)

    for name in ("dpmpp_2m", "unipc", "deis"):
        with pytest.raises(NonFiniteError, match=r"step 5 \(t=0.594\)"):
            solvers.get(name).sample(Field(blows_up, I, "noise"), torch.ones(4, 2), nfe=10, grid=grid)


def test_interleaved_runs_do_not_share_scratch():
    """Two runs stepped alternately (a dashboard streaming two samplers) equal the runs made one after the other;
    an abandoned run gives its scratch back to the pool."""
    from workbench.solvers.log_snr import SCRATCH

    prob = PROBLEMS.get("gmm2d")
    I = interpolants.get("vp")
    field = _field(prob, I, "noise")
    s = solvers.get("unipc", order=3)
    grid = s.make_grid(field, 12, "logsnr", 0.0, 0.99)
    xa = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(1))
    xb = prob.sample_start(I, 0.0, 16, torch.Generator().manual_seed(2))
    alone = [list(s.iterate(field, x0, grid))[-1].x for x0 in (xa, xb)]
    ga, gb = s.iterate(field, xa, grid), s.iterate(field, xb, grid)
    last = {}
    for sa, sb in zip(ga, gb):
        last["a"], last["b"] = sa.x, sb.x
    assert torch.equal(last["a"], alone[0]) and torch.equal(last["b"], alone[1])
    before = SCRATCH._bytes
    g = s.iterate(field, xa, grid)
    next(g), next(g)
    g.close()
    assert SCRATCH._bytes >= before  # its ring came back (or the pool was already full)
