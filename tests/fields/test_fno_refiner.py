"""FNO layers, the SNR-matched interpolant generator, training/rollout plumbing, the CLI and the vorticity problem."""
import math
import os

import pytest
import torch
from torch import nn

from workbench import interpolants, solvers
from workbench.cli import main as cli_main
from workbench.data.navier_stokes import kolmogorov_config, generate_trajectories
from workbench.fields import InterpolantDenoiser, OneStepSurrogate, Refiner, rollout, rollout_error
from workbench.fields.pipeline import downsample
from workbench.errors import ConfigError
from workbench.models.fno import FNO2d, SpectralConv2d


def test_spectral_conv_with_identity_weights_is_a_low_pass():
    m, n, c = 4, 16, 3
    layer = SpectralConv2d(c, c, m)
    with torch.no_grad():
        layer.w_re.zero_()
        layer.w_im.zero_()
        for i in range(c):
            layer.w_re[:, :, :, i, i] = 1.0
    x = torch.randn(2, c, n, n, dtype=torch.float64)
    layer = layer.double()
    xf = torch.fft.rfft2(x)
    keep = torch.zeros(n, n // 2 + 1, dtype=torch.bool)
    keep[:m, :m] = True
    keep[n - m:, :m] = True
    expected = torch.fft.irfft2(xf * keep, s=(n, n))
    assert torch.allclose(layer(x), expected, atol=1e-12)


def test_fno_is_resolution_agnostic_and_validates():
    net = FNO2d(2, 1, width=8, modes=4, layers=2, local_kernel=3, time_embedding=True)
    t = torch.rand(3)
    for n in (16, 24):
        assert net(torch.randn(3, 2, n, n), t).shape == (3, 1, n, n)
    with pytest.raises(ConfigError, match="t"):
        net(torch.randn(3, 2, 16, 16))
    with pytest.raises(ConfigError, match="local_kernel"):
        FNO2d(local_kernel=2)


class _ExactGaussianVelocity(nn.Module):
    """The exact linear-interpolant velocity for x1 ~ N(0, s² I): v = (τ s² − (1−τ)) x / (τ² s² + (1−τ)²)."""

    def __init__(self, s):
        super().__init__()
        self.s = s
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, inp, feat):
        tau = torch.sigmoid(12.0 * feat.to(torch.float64)).to(inp.dtype)[:, None, None, None]
        s2 = self.s ** 2
        return (tau * s2 - (1 - tau)) * inp[:, :1] / (tau ** 2 * s2 + (1 - tau) ** 2)


@pytest.mark.parametrize("name", ["linear", "vp", "trig"])
def test_snr_matching_gives_the_exact_velocity_of_any_gaussian_interpolant(name):
    s = 1.7
    den = InterpolantDenoiser(conditional=False, net=_ExactGaussianVelocity(s)).double()
    interp = interpolants.get(name)
    model = den.model_for(interp)
    x = torch.randn(5, 8, 8, dtype=torch.float64)
    for tv in (0.1, 0.5, 0.9):
        t = torch.full((5,), tv, dtype=torch.float64)
        c = interp.coefficients(tv)
        a, sig = float(c.signal), float(c.sigma)
        var = a * a * s * s + sig * sig
        d, xi = a * s * s * x / var, sig * x / var
        exact = float(c.d_signal) * d + (float(c.sigma_dsigma) / sig) * xi
        assert torch.allclose(model(x, t), exact, rtol=1e-9, atol=1e-10), (name, tv)


def test_sampling_the_exact_gaussian_generator_recovers_its_std():
    s = 1.7
    den = InterpolantDenoiser(conditional=False, net=_ExactGaussianVelocity(s)).double()
    from workbench.models.field import Field

    interp = interpolants.get("vp")
    field = Field(den.model_for(interp), interp, "velocity")
    x0 = torch.randn(64, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    res = solvers.get("heun").sample(field, x0, nfe=60, schedule="logsnr")
    assert res.nfe == 60
    assert abs(float(res.x.std()) - s) < 0.05


def test_mirror_interpolant_is_refused():
    den = InterpolantDenoiser(conditional=False, width=4, modes=2, layers=1)
    with pytest.raises(ConfigError, match="interpolant"):
        den.model_for(interpolants.get("mirror"))


@pytest.fixture(scope="module")
def tiny_traj():
    torch.set_num_threads(1)  # module fixtures run before the autouse single-thread fixture
    cfg = kolmogorov_config(n_traj=4, n=32, frames=12, frame_dt=0.2, warmup=2.0, dt=0.02, seed=3)
    return downsample(generate_trajectories(cfg, progress=False)["vorticity"], 16).float()


def test_surrogate_and_refiner_train_and_roll_out(tiny_traj):
    torch.manual_seed(0)
    fno = OneStepSurrogate(width=8, modes=4, layers=2)
    log = fno.fit(tiny_traj, iterations=60, batch_size=8, lr=3e-3, progress=False)
    assert log.loss[-1] < log.loss[0]
    ref = Refiner(width=8, modes=4, layers=2)
    rlog = ref.fit(tiny_traj, iterations=30, batch_size=8, progress=False)
    assert all(math.isfinite(v) for v in rlog.loss)
    calls = []
    ref.denoiser.net.register_forward_hook(lambda *a: calls.append(1))
    u0 = tiny_traj[:, 0]
    g = torch.Generator().manual_seed(0)
    out = rollout(lambda u: ref(u, "heun", 6, "logsnr", generator=g), u0, 3)
    assert out.shape == (4, 4, 16, 16) and len(calls) == 3 * 6  # NFE audited: 6 calls per step
    with torch.no_grad():
        pred = rollout(fno, u0, 3)
    err = rollout_error(pred, tiny_traj[:, :4])
    assert float(err[0]) == 0.0 and float(err[1]) > 0.0
    assert float(rollout_error(tiny_traj[:, :4], tiny_traj[:, :4]).abs().max()) == 0.0


def test_downsample_keeps_low_modes_exactly():
    n = 32
    x = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    f = (torch.sin(3 * x)[None, :] + torch.cos(5 * x)[:, None] + 0.1 * torch.sin(12 * x)[None, :])[None]
    g = downsample(f, 16)
    x16 = torch.arange(16, dtype=torch.float64) * (2 * math.pi / 16)
    expected = torch.sin(3 * x16)[None, :] + torch.cos(5 * x16)[:, None]
    assert torch.allclose(g[0], expected, atol=1e-12)


def test_cli_quick_spectra(tmp_path, monkeypatch):
    out = tmp_path / "spec.png"
    rc = cli_main(["fields", "spectra", "--quick", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                   "--rollout-steps", "3", "--no-generator"])
    assert rc == 0 and out.exists() and out.stat().st_size > 1000
    assert (tmp_path / "summary.md").exists() and (tmp_path / "rollout_error.csv").exists()
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("**SMOKE TEST (--quick)")  # --quick is labelled as what it is
    assert "step 10" not in summary and summary.count("rel. L2 err step 3") == 1  # min(10, T) is labelled T
    assert "corr. time ρ ≥ 0.8" in summary and "fRMSE low" in summary  # the rollout metrics table


def test_vorticity_problem_runs_in_an_experiment(tmp_path):
    from workbench.experiment import Experiment
    from workbench.fields import problem  # noqa: F401  (registers "vorticity")
    from workbench.metrics.spectra import energy_spectrum

    exp = Experiment(data="vorticity", data_params={"grid": 16, "iterations": 5, "width": 4, "modes": 2,
                                                    "layers": 1, "sim_grid": 16, "warmup": 1.0,
                                                    "cache_dir": str(tmp_path)},
                     interpolant="vp", schedule="logsnr", solver="euler", nfe=4, n_samples=6, keep_trajectory=False)
    res = exp.run()
    assert res.samples.shape == (6, 16, 16) and res.nfe == 4
    assert res.sliced_w2 is not None and math.isfinite(res.sliced_w2)
    assert energy_spectrum(res.samples).energy.shape[0] == 6
    assert any(p.startswith("vorticity_gen_") for p in os.listdir(tmp_path))
