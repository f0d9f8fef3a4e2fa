"""Data sets, networks, the prediction wrapper and model save/load."""
import pytest
import torch
from torch import nn

from workbench.data import DATASETS, get_dataset
from workbench.errors import ConfigError, UnknownNameError
from workbench.interpolants import get
from workbench.models import MLP, Predictor, UNet, io


def test_datasets_seeded_any_n_and_clear_error():
    for name in ["moons", "checkerboard", "spirals", "rings", "gmm"]:
        ds = get_dataset(name)
        a = ds.sample(37, torch.Generator().manual_seed(3))
        b = ds.sample(37, torch.Generator().manual_seed(3))
        assert a.shape == (37, 2) and torch.equal(a, b) and torch.isfinite(a).all()
        assert not torch.equal(ds.held_out(37), a)
    with pytest.raises(UnknownNameError, match="checkerboard, digits, gmm, moons, rings, spirals"):
        get_dataset("mnist")


def test_checkerboard_only_black_cells_and_gmm_truth():
    x = get_dataset("checkerboard").sample(4000, torch.Generator().manual_seed(0))
    cells = torch.floor(x + 2.0).long()               # 4x4 cells of size 1
    assert bool(((cells.sum(1) % 2) == 0).all())
    assert x.min() >= -2 and x.max() <= 2
    ds = get_dataset("gmm")
    s = ds.sample(20000, torch.Generator().manual_seed(1))
    assert torch.allclose(s.mean(0), ds.truth.mean(), atol=0.05)


def test_digits_normalised_and_split():
    ds = get_dataset("digits")
    x = ds.sample(16, torch.Generator().manual_seed(0))
    assert x.shape == (16, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    tr, te = ds.train_images.reshape(len(ds.train_images), -1), ds.test_images.reshape(len(ds.test_images), -1)
    assert len(tr) + len(te) == 1797
    # no test image is a (byte-identical) training image drawn by index: the index sets are disjoint
    assert abs(len(te) - round(0.2 * 1797)) <= 1


def test_networks_shapes_and_time_dependence():
    m = MLP(2, width=32, depth=2, embedding="fourier")
    x = torch.randn(5, 2)
    assert m(x, torch.rand(5)).shape == (5, 2)
    assert not torch.allclose(m(x, torch.zeros(5)), m(x, torch.ones(5)))
    u = UNet((1, 8, 8), channels=8, channel_mult=(1, 2))
    assert u(torch.randn(3, 1, 8, 8), torch.rand(3)).shape == (3, 1, 8, 8)
    with pytest.raises(ConfigError, match="channel_mult"):
        UNet((1, 6, 6), channel_mult=(1, 2, 2))


class _ExactNet(nn.Module):
    """The exact GMM prediction of one kind as a 'network'."""

    def __init__(self, gmm, interp, kind):
        super().__init__()
        self.gmm, self.interp, self.kind = gmm, interp, kind

    def forward(self, x, t):
        return self.gmm.predict(x, t, self.interp, self.kind)


@pytest.mark.parametrize("source", ["velocity", "score", "x1", "noise", "x0", "z"])
def test_predictor_converts_every_kind(source):
    gmm = get_dataset("gmm").truth
    I = get("sb", a=0.5)
    p = Predictor(_ExactNet(gmm, I, source), I, source)
    x = gmm.sample_marginal(I, 0.4, 64, torch.Generator().manual_seed(0))
    t = torch.full((64,), 0.4, dtype=torch.float64)
    for target in ["velocity", "score", "x1", "noise", "x0", "z"]:
        assert torch.allclose(p.predict(x, t, target), gmm.predict(x, t, I, target), rtol=1e-8, atol=1e-8)
    pr = p.field().predict(x, 0.4)
    assert torch.allclose(pr.velocity, gmm.velocity(x, 0.4, I), atol=1e-8)


def test_predictor_refuses_undefined_kinds():
    with pytest.raises(ConfigError, match="gamma"):
        Predictor(MLP(2), get("linear"), "z")
    with pytest.raises(ConfigError, match="prediction"):
        Predictor(MLP(2), get("linear"), "velocityy")


def test_save_load_roundtrip_and_refusals(tmp_path):
    torch.manual_seed(0)
    p = Predictor(MLP(2, width=16, depth=1), get("vp", beta_max=15.0), "noise")
    stem = tmp_path / "m"
    io.save(p, stem, extra={"note": "x"})
    q = io.load(stem, interpolant={"name": "vp", "params": {"beta_min": 0.1, "beta_max": 15.0}}, prediction="eps")
    x, t = torch.randn(4, 2), torch.rand(4)
    assert torch.equal(p(x, t), q(x, t))
    assert io.read_config(stem)["extra"] == {"note": "x"}
    with pytest.raises(ConfigError, match="beta_max"):
        io.load(stem, interpolant="vp")                   # same family, other parameters
    with pytest.raises(ConfigError, match="predicts 'noise'"):
        io.load(stem, prediction="velocity")
    with pytest.raises(ConfigError, match="architecture"):
        io.load(stem, architecture="unet")
    # weights that do not fit the configured architecture
    io.save(Predictor(MLP(2, width=8, depth=1), get("vp", beta_max=15.0), "noise"), tmp_path / "other")
    (tmp_path / "other.json").write_text((tmp_path / "m.json").read_text())
    with pytest.raises(ConfigError, match="do not fit"):
        io.load(tmp_path / "other")
    with pytest.raises(ConfigError, match="no config"):
        io.load(tmp_path / "missing")
