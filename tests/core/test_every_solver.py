"""Every registered solver runs end to end through `Experiment` and through `workbench run` (no solver is
reachable from the library but broken from the front doors), and DPM-Solver-v3's pilot statistics are exact
where they have a closed form."""
import pytest
import torch

from workbench.cli import main
from workbench.errors import ConfigError
from workbench.experiment import Experiment
from workbench.problems import PROBLEMS
from workbench.solvers import SOLVERS
from workbench.solvers.dpm_solver_v3 import compute_ems
from workbench.solvers.log_snr import LogSNRTable


def _nfe(name: str) -> int:
    cls = SOLVERS.cls(name)
    return 400 if cls.adaptive else 12 * cls.evals_per_step


@pytest.mark.parametrize("name", SOLVERS.names())
def test_every_solver_runs_from_experiment(name):
    r = Experiment(solver=name, nfe=_nfe(name), n_samples=32, keep_trajectory=False).run()
    assert r.samples.shape == (32, 2) and bool(torch.isfinite(r.samples).all())
    assert 1 <= r.nfe <= r.nfe_budget
    if not SOLVERS.cls(name).stochastic:  # an ODE solver on the exact field lands near the exact map
        assert r.error is not None and r.error < 0.5


@pytest.mark.parametrize("name", SOLVERS.names())
def test_every_solver_runs_from_the_cli(name, tmp_path):
    assert main(["run", "--solver", name, "--nfe", str(_nfe(name)), "--n-samples", "16",
                 "--out", "", "--json", str(tmp_path / "r.json")]) == 0


def test_eps_goes_only_to_solvers_that_take_it():
    pc = Experiment(solver="pc", nfe=12, n_samples=8)  # an SDE sampler without an eps parameter
    assert "eps" not in SOLVERS.parameters("pc") and pc.run().samples.shape == (8, 2)
    with pytest.raises(ConfigError, match="eps=0.5 is only used by the solvers .*euler_maruyama"):
        Experiment(solver="pc", eps=0.5)
    with pytest.raises(ConfigError, match="ODE solver 'heun'"):
        Experiment(solver="heun", eps=0.5)


def test_dpm_solver_v3_statistics_match_the_gaussian_closed_form():
    """For Gaussian data the scaled noise prediction σε(x) is affine in x, so the EMS ``l`` (the mean diagonal
    of ∂(σε)/∂x along the pilot) equals the Jacobian's diagonal at any point, at every λ node."""
    prob = PROBLEMS.get("gaussian")
    exp = Experiment(data="gaussian", dtype="float64")
    field = prob.field(exp._interpolant, "cpu", torch.float64)
    x = prob.sample_start(exp._interpolant, 0.0, 64, torch.Generator().manual_seed(1))
    ems = compute_ems(field, x, 0.0, 1.0, n_lambda=24, smooth=0.0)
    I = field.interpolant
    tab = LogSNRTable.build(I, I.t_from_log_snr(ems.lam, 0.0, 1.0).tolist())
    cov = prob.gmm.covs[0]
    for k in (0, 11, 23):  # closed form: σε(x) = σ² Σ_t⁻¹ (x − a μ) with Σ_t = a² Σ + σ² I
        a, sigma = float(tab.a[k]), float(tab.sigma[k])
        jac = sigma ** 2 * torch.linalg.inv(a * a * cov + sigma * sigma * torch.eye(2, dtype=torch.float64))
        assert torch.allclose(ems.l[k], torch.diagonal(jac), atol=1e-8), (k, ems.l[k], torch.diagonal(jac))
    assert float(ems.l[0].min()) > 0.5 and float(ems.l[-1].max()) < 0.1  # noise end ≈ 1, data end ≈ 0
    assert ems.pilot_nfe >= 24
