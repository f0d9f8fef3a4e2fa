"""Reporting of the fields pipeline: one tail window, honest step labels, the smoke-test banner, CLI defaults."""
import math

import pytest
import torch

from workbench.data.grf import gaussian_random_field
from workbench.errors import ConfigError
from workbench.fields.pipeline import SpectraConfig, error_steps, smoke_test_label, summary_markdown
from workbench.fields.rollout import rollout_error, rollout_scores
from workbench.metrics.spectra import tail_ratio, tail_window


def _damped(a: torch.Tensor, k_above: float, factor: float) -> torch.Tensor:
    n = a.shape[-1]
    ky = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64).abs()[:, None]
    kx = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64)[None, :]
    damp = torch.where(torch.sqrt(kx ** 2 + ky ** 2) + 0.5 >= k_above, factor, 1.0)  # shell >= k_above
    return torch.fft.irfft2(torch.fft.rfft2(a) * damp, s=(n, n))


def test_one_tail_window_for_rollout_scores_and_the_pipeline():
    assert tail_window(32) == (8.0, 15.0) and tail_window(64) == (16.0, 31.0)
    with pytest.raises(ConfigError, match="grid"):
        tail_window(4)
    ref = gaussian_random_field(6, 32, "power", slope=3.0, generator=torch.Generator().manual_seed(1))
    ref = ref.reshape(2, 3, 32, 32)
    # damping shells >= 8 by 1/2 scales the tail (8..15) by exactly 1/4; damping only shells >= 16 leaves it alone
    pred = _damped(ref, 8, 0.5)
    sc = rollout_scores(pred, ref, window=3)
    assert sc["tail_range"] == [8.0, 15.0]
    assert sc["tail_ratio"] == pytest.approx(0.25, rel=1e-10)
    assert tail_ratio(pred, ref) == pytest.approx(0.25, rel=1e-10)  # the default is the same window
    assert rollout_scores(_damped(ref, 16, 0.5), ref, window=3)["tail_ratio"] == pytest.approx(1.0, rel=1e-10)
    # under the old rollout.py window (n/6..n/3 = 5.3..10.7) a damping above shell 11 was invisible, and here it is not
    assert rollout_scores(_damped(ref, 12, 0.0), ref, window=3)["tail_ratio"] < 0.9


def test_error_steps_label_the_step_they_show():
    assert error_steps(60) == [1, 10, 60]
    assert error_steps(8) == [1, 8]
    assert error_steps(1) == [1]
    with pytest.raises(ConfigError, match="rollout_steps"):
        error_steps(0)


def _fake_result(steps: int, smoke: bool):
    cfg = SpectraConfig.quick() if smoke else SpectraConfig()
    cfg.rollout_steps = steps
    from dataclasses import asdict

    e = torch.linspace(0, 1, steps + 1)
    return {"config": asdict(cfg), "error": {"fno": e, "refiner": 0.5 * e}, "persistence_error": 2 * e,
            "tail_ratio": {"fno": 0.5, "refiner": 1.0}, "tail_ratio_step1": {"fno": 0.9, "refiner": 1.0},
            "log_spectral_error": {"fno": 0.3, "refiner": 0.1}, "tail_range": list(tail_window(cfg.grid)),
            "timing": {"total_s": 1.0}}


def test_summary_names_its_steps_and_labels_smoke_tests():
    quick = summary_markdown(_fake_result(8, smoke=True))
    assert quick.startswith("**SMOKE TEST (--quick)") and "16² grid" in quick
    assert "step 10" not in quick and "rel. L2 err step 8" in quick
    # the step-8 value is printed once per model (it was printed twice, as "step 10" and "final step")
    fno_row = next(line for line in quick.splitlines() if line.startswith("| fno |"))
    assert fno_row.count("1.000") == 1
    assert "persistence" in quick and "√2" in quick
    full = summary_markdown(_fake_result(60, smoke=False))
    assert "SMOKE TEST" not in full and smoke_test_label(_fake_result(60, False)["config"]) == ""
    assert "rel. L2 err step 10" in full and "rel. L2 err step 60" in full


def test_persistence_reference_and_sqrt2_level():
    # persistence error of a field that flips sign each step is 2 on odd steps, 0 on even ones
    u = gaussian_random_field(3, 16, "power", slope=2.0, generator=torch.Generator().manual_seed(2))
    traj = torch.stack([u, -u, u], 1)
    pe = rollout_error(traj[:, :1].expand_as(traj), traj)
    assert torch.allclose(pe, torch.tensor([0.0, 2.0, 0.0], dtype=pe.dtype), atol=1e-12)
    # two independent fields of equal spectrum: relative error -> sqrt(2)
    a = gaussian_random_field(64, 32, "power", slope=1.0, generator=torch.Generator().manual_seed(3))
    b = gaussian_random_field(64, 32, "power", slope=1.0, generator=torch.Generator().manual_seed(4))
    r = float(rollout_error(a[:, None], b[:, None])[0])
    assert abs(r - math.sqrt(2)) < 0.05


def test_cli_refiner_default_text_matches_the_config():
    from workbench.cli import build_parser
    from workbench.commands.fields import REFINER_SOLVER_DEFAULT

    assert REFINER_SOLVER_DEFAULT == SpectraConfig().refiner_solver
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["fields"]
    spectra = next(a for a in sub._actions if a.dest == "fields_command").choices["spectra"]
    text = spectra.format_help()
    assert f"(default {SpectraConfig().refiner_solver})" in text and "default heun" not in text
    assert "SMOKE TEST" in text
