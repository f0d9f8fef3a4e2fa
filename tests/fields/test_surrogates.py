"""Issue 19 item 5: HiPPO-LegT, the spectral loss, the surrogate registry (FNO, UNet, refiner, Spectral-Refiner, TSM)
and push-forward training — closed-form checks, contracts and tiny training runs."""
import math

import pytest
import torch

from workbench.errors import ConfigError
from workbench.fields.hippo import (LegTEncoder, legt_discretize, legt_matrices, legt_project, legt_reconstruct,
                                    shifted_legendre)
from workbench.fields.spectral_loss import SpectralLoss, band_index, band_power
from workbench.fields.surrogates import SURROGATES, FNOSurrogate, SpectralRefiner, TSMSurrogate
from workbench.fields.training import history_windows, one_step_pairs, push_forward

F64 = torch.float64


def _poly(coef):
    return lambda s: sum(c * s ** i for i, c in enumerate(coef))


# ---- HiPPO-LegT ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("order,theta", [(3, 1.0), (6, 2.5)])
def test_legt_ode_is_exact_for_polynomial_histories(order, theta):
    """dc/dt = A c + B u integrated exactly (matrix exponential of the system augmented with u and its derivatives)
    carries the exact projection at t0 to the exact projection at t1 when u is a polynomial of degree < N."""
    g = torch.Generator().manual_seed(order)
    coef = torch.randn(order, generator=g, dtype=F64)  # degree N - 1
    u = _poly(coef)
    a, b = legt_matrices(order, theta)
    d = order - 1
    m = torch.zeros(order + d + 1, order + d + 1, dtype=F64)
    m[:order, :order], m[:order, order] = a, b
    for j in range(d):
        m[order + j, order + j + 1] = 1.0
    t0, t1 = 0.3, 1.9
    derivs = torch.tensor([sum(float(coef[i]) * math.perm(i, j) * t0 ** (i - j) for i in range(j, order))
                           for j in range(d + 1)], dtype=F64)
    z0 = torch.cat([legt_project(u, order, theta, t0), derivs])
    c1 = (torch.linalg.matrix_exp(m * (t1 - t0)) @ z0)[:order]
    exact = legt_project(u, order, theta, t1)
    assert torch.allclose(c1, exact, atol=1e-11, rtol=0)
    # a sign error in A (or B) breaks it
    m[0, 1] *= -1
    assert not torch.allclose((torch.linalg.matrix_exp(m * (t1 - t0)) @ z0)[:order], exact, atol=1e-3)


def test_legt_projection_reconstructs_polynomials_of_degree_below_n():
    n, theta, t = 5, 2.0, 0.7
    r = torch.linspace(0, 1, 11, dtype=F64)
    u = _poly([0.3, -1.0, 0.5, 0.2, -0.1])  # degree 4 = N - 1
    c = legt_project(u, n, theta, t)
    assert torch.allclose(legt_reconstruct(c, r), u(t - theta * r), atol=1e-13, rtol=0)
    u5 = _poly([0.3, -1.0, 0.5, 0.2, -0.1, 0.4])  # degree N: not representable
    assert (legt_reconstruct(legt_project(u5, n, theta, t), r) - u5(t - theta * r)).abs().max() > 1e-3
    # P_i(2r - 1) values: P_2(x) = (3x^2 - 1)/2
    x = 2 * r - 1
    assert torch.allclose(shifted_legendre(3, r)[:, 2], (3 * x ** 2 - 1) / 2, atol=1e-15)


@pytest.mark.parametrize("method", ["foh", "bilinear"])
def test_legt_discretisations_are_exact_on_linear_histories(method):
    n, theta, h = 5, 2.0, 0.1
    u = _poly([0.7, -1.3])
    d = legt_discretize(n, h, theta, method)
    c = legt_project(u, n, theta, 0.0)
    for k in range(10):
        c = d["Ad"] @ c + d["B0"] * u(h * k) + d["B1"] * u(h * (k + 1))
    assert torch.allclose(c, legt_project(u, n, theta, 10 * h), atol=1e-12, rtol=0)


def test_legt_zoh_is_first_order_and_foh_is_exact_for_zoh_matrix_exponential():
    n, theta = 4, 1.0
    a, b = legt_matrices(n, theta)
    d = legt_discretize(n, 0.05, theta, "zoh")
    assert torch.allclose(d["Ad"], torch.linalg.matrix_exp(0.05 * a), atol=1e-14)
    assert torch.allclose(a @ d["B0"], (d["Ad"] - torch.eye(n, dtype=F64)) @ b, atol=1e-12)


def test_legt_encoder_matrix_equals_recurrence_and_keeps_constants():
    enc = LegTEncoder(order=3, frames=5, method="foh")
    x = torch.randn(2, 5, 4, 4, dtype=F64)
    assert torch.allclose(enc.encode(x, 1), enc.recurrence(x, 1), atol=1e-13)
    const = torch.full((1, 5, 2, 2), 2.5, dtype=F64)
    c = enc.encode(const, 1)
    assert torch.allclose(c[:, 0], const[:, 0], atol=1e-13) and c[:, 1:].abs().max() < 1e-13
    with pytest.raises(ConfigError, match="order"):
        LegTEncoder(order=6, frames=4)
    with pytest.raises(ConfigError, match="method.*foh, zoh, bilinear"):
        LegTEncoder(order=2, frames=4, method="euler")


# ---- spectral loss -----------------------------------------------------------------------------------------
def test_spectral_loss_with_flat_weights_is_the_mse_by_parseval():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 16, 16, generator=g, dtype=F64), torch.randn(3, 16, 16, generator=g, dtype=F64)
    assert abs(float(SpectralLoss()(a, b)) - float(((a - b) ** 2).mean())) < 1e-13


def test_spectral_loss_of_one_fourier_mode_is_its_band_weight_times_half_amplitude_squared():
    n, amp = 32, 0.7
    x = torch.arange(n, dtype=F64) * 2 * math.pi / n
    loss = SpectralLoss((4, 12), (1.0, 3.0, 9.0))
    for k, w in ((2, 1.0), (5, 3.0), (13, 9.0)):
        e = amp * torch.cos(k * x)[None, :].expand(n, n)[None]
        assert abs(float(loss(e, torch.zeros_like(e))) - w * amp ** 2 / 2) < 1e-13
    e = amp * torch.cos(3 * x[None, :] + 4 * x[:, None])[None]  # |k| = 5: mid
    assert abs(float(loss(e, torch.zeros_like(e))) - 3.0 * amp ** 2 / 2) < 1e-13


def test_balanced_spectral_weights_make_every_band_count_equally():
    g = torch.Generator().manual_seed(2)
    t = torch.fft.irfft2(torch.randn(8, 32, 17, dtype=torch.complex128, generator=g)
                         / (1 + torch.arange(17.0, dtype=F64)) ** 2, s=(32, 32))
    loss = SpectralLoss.balanced(t, (4, 12))
    p = band_power(t, (4, 12))
    contrib = torch.tensor(loss.weights, dtype=F64) * p
    assert torch.allclose(contrib, contrib.mean().expand(3), rtol=1e-12)
    assert abs(sum(loss.weights) - 3) < 1e-12
    assert band_index(32).unique().tolist() == [0, 1, 2]
    with pytest.raises(ConfigError, match="weights"):
        SpectralLoss(weights=(1.0, -1.0, 1.0))
    with pytest.raises(ConfigError, match="bands"):
        SpectralLoss(bands=(5, 3))


# ---- windows and push-forward ------------------------------------------------------------------------------
def test_history_windows_and_push_forward():
    traj = torch.arange(2 * 6 * 2 * 2, dtype=F64).reshape(2, 6, 2, 2)
    w = history_windows(traj, 1, 1)
    p = one_step_pairs(traj)
    assert torch.equal(w[:, 0], p["inputs"]) and torch.equal(w[:, 1], p["targets"])
    w = history_windows(traj, 3, 2)
    assert w.shape == (2 * 2, 5, 2, 2) and torch.equal(w[1], traj[0, 1:6])
    with pytest.raises(ConfigError, match="traj"):
        history_windows(traj, 4, 3)
    lin = torch.nn.Linear(1, 1, bias=False)
    step = lambda h: lin.weight[0, 0] * h[:, -1]  # noqa: E731
    h = push_forward(step, traj[:, :2], 3)
    assert not h.requires_grad
    wgt = float(lin.weight.detach())
    assert torch.allclose(h[:, -1], wgt ** 3 * traj[:, 1]) and torch.allclose(h[:, 0], wgt ** 2 * traj[:, 1])


# ---- surrogates ---------------------------------------------------------------------------------------------
def _shifting_traj(n=16, frames=10, batch=3, seed=0):
    """u_t(x) = u_0(x - t): a periodic translation by one cell per frame (an exact one-step map to learn)."""
    g = torch.Generator().manual_seed(seed)
    u0 = torch.fft.irfft2(torch.randn(batch, n, n // 2 + 1, dtype=torch.complex64, generator=g)
                          * (torch.arange(n // 2 + 1) < 4), s=(n, n))
    u0 = u0 / u0.std()
    return torch.stack([torch.roll(u0, t, dims=-1) for t in range(frames)], 1)


def test_registry_and_shape_contracts():
    assert SURROGATES.names() == ["fno", "pde_refiner", "spectral_refiner", "tsm", "unet"]
    small = dict(width=8, modes=4, layers=2)
    kws = {"fno": small, "unet": dict(grid=16, channels=8, channel_mult=(1, 2)), "pde_refiner": dict(nfe=2, **small),
           "spectral_refiner": small, "tsm": dict(history=3, order=3, **small)}
    x = torch.randn(2, 3, 16, 16)
    for name, kw in kws.items():
        m = SURROGATES.get(name, **kw)
        h = x[:, -m.history:]
        assert m(h).shape == (2, 16, 16), name
        out = m.rollout(h, 2)
        assert out.shape == (2, 3, 16, 16) and torch.equal(out[:, 0], h[:, -1]), name
    with pytest.raises(ConfigError, match="frames"):
        SURROGATES.get("tsm", history=3, order=2, **small)(x[:, :2])
    with pytest.raises(ConfigError, match="history"):
        SURROGATES.get("tsm", history=1)
    with pytest.raises(ConfigError, match="stencil"):
        SURROGATES.get("tsm", stencil=4)
    with pytest.raises(ConfigError, match="unroll"):
        SURROGATES.get("pde_refiner", nfe=2, **small).fit(_shifting_traj(), 1, unroll=2, progress=False)


def test_tsm_applies_the_predicted_stencil_to_the_current_field():
    m = TSMSurrogate(history=2, order=2, stencil=3, width=4, modes=2, layers=1, stencil_form="free").double()
    z = torch.randn(2, 2, 8, 8, dtype=F64)
    j = m.offsets.index((0, 1))

    class Fixed(torch.nn.Module):
        def forward(self, feats):
            out = torch.zeros(feats.shape[0], len(m.offsets) + 1, *feats.shape[-2:], dtype=feats.dtype)
            out[:, j] = 2.0
            out[:, -1] = 0.5
            return out

    m.net = Fixed()
    expected = 2.0 * torch.roll(z[:, -1], shifts=-1, dims=-1) + 0.5  # 2 z(x + e_x) + beta
    assert torch.allclose(m.increment(z), expected, atol=1e-14)
    f = m.features(z)
    assert torch.equal(f[:, 0], z[:, -1]) and torch.allclose(f[:, 1:], m.encoder.encode(z, 1))


def test_tsm_convex_stencil_is_an_interpolation_of_the_neighbours():
    """Default form: softmax weights minus the identity. A constant field moves by the source alone; with a zero
    source the new value lies in the range of the 3×3 neighbourhood (discrete maximum principle); a one-hot logit
    at offset (0, 1) is the exact shift z(x + e_x)."""
    m = TSMSurrogate(history=2, order=2, stencil=3, width=4, modes=2, layers=1).double()
    assert m.stencil_form == "convex"
    logits = torch.randn(2, len(m.offsets) + 1, 8, 8, dtype=F64)

    class Fixed(torch.nn.Module):
        def __init__(self, out):
            super().__init__()
            self.out = out

        def forward(self, feats):
            return self.out

    m.net = Fixed(logits)
    const = torch.full((2, 2, 8, 8), 1.7, dtype=F64)
    assert torch.allclose(m.increment(const), logits[:, -1], atol=1e-13)
    z = torch.randn(2, 2, 8, 8, dtype=F64)
    m.net = Fixed(torch.cat([logits[:, :-1], torch.zeros_like(logits[:, -1:])], 1))
    new = z[:, -1] + m.increment(z)
    neigh = torch.stack([torch.roll(z[:, -1], (-dy, -dx), (-2, -1)) for dy, dx in m.offsets], 1)
    assert (new <= neigh.amax(1) + 1e-12).all() and (new >= neigh.amin(1) - 1e-12).all()
    assert not torch.allclose(new, z[:, -1])
    onehot = torch.full_like(logits, -1e4)
    onehot[:, m.offsets.index((0, 1))] = 0.0
    onehot[:, -1] = 0.0
    m.net = Fixed(onehot)
    assert torch.allclose(z[:, -1] + m.increment(z), torch.roll(z[:, -1], -1, -1), atol=1e-12)
    with pytest.raises(ConfigError, match="stencil_form"):
        TSMSurrogate(history=2, order=2, stencil_form="linear")


def test_unet_surrogate_is_periodic_shift_equivariant():
    m = SURROGATES.get("unet", grid=16, channels=8, channel_mult=(1, 2)).double()
    torch.nn.init.normal_(m.net.out.weight, std=0.1)
    z = torch.randn(1, 1, 16, 16, dtype=F64)
    shifted = torch.roll(z, shifts=(2, 4), dims=(-2, -1))  # multiples of the downsampling factor 2
    assert torch.allclose(m.increment(shifted), torch.roll(m.increment(z), shifts=(2, 4), dims=(-2, -1)), atol=1e-10)


@pytest.mark.parametrize("name,kw", [("fno", dict(width=8, modes=3, layers=2)),
                                     ("tsm", dict(history=2, order=2, width=8, modes=3, layers=2))])
def test_tiny_training_decreases_the_loss(name, kw):
    """40 iterations on an exact one-step map (a one-cell translation of band-limited fields) halve the loss."""
    torch.manual_seed(0)
    traj = _shifting_traj(n=8, frames=6, batch=2)
    m = SURROGATES.get(name, **kw)
    m.fit_normalizers(traj)
    w = history_windows(traj, m.history, 1)

    def full_loss():
        with torch.no_grad():
            z = m.u_norm.encode(w[:, :m.history])
            return float(m.loss(m.increment(z), (w[:, -1] - w[:, -2]) / m.r_norm.std))

    before = full_loss()
    m.fit(traj, iterations=40, batch_size=4, lr=1e-2, progress=False)
    assert full_loss() < 0.5 * before


def test_unrolled_training_runs_and_differs_from_one_step_training():
    traj = _shifting_traj(frames=8)
    out = {}
    for k in (1, 3):
        torch.manual_seed(0)
        m = FNOSurrogate(width=8, modes=4, layers=2)
        log = m.fit(traj, iterations=12, batch_size=4, progress=False, unroll=k)
        assert all(math.isfinite(v) for v in log.loss)
        out[k] = torch.cat([p.detach().flatten() for p in m.parameters()])
    assert not torch.allclose(out[1], out[3])
    with pytest.raises(ConfigError, match="unroll"):
        FNOSurrogate(width=8, modes=4, layers=2).fit(traj, 1, unroll=0, progress=False)


def test_spectral_refiner_starts_from_the_operator_and_fine_tunes_only_its_last_layers():
    traj = _shifting_traj(frames=6)
    torch.manual_seed(0)
    fno = FNOSurrogate(width=8, modes=4, layers=3)
    fno.fit(traj, iterations=5, batch_size=4, progress=False)
    sr = SpectralRefiner.from_operator(fno, bands=(2, 5), band_weights=(1.0, 2.0, 4.0), trainable_layers=1)
    x = traj[:, 0]
    assert torch.equal(sr(x), fno(x))
    before = {k: v.clone() for k, v in sr.state_dict().items()}
    log = sr.fine_tune(traj, iterations=5, batch_size=4, progress=False)
    assert sr.spectral_loss == SpectralLoss((2, 5), (1.0, 2.0, 4.0)) and len(log.loss) == 1
    after = sr.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("net.spectral.2", "net.local.2", "net.proj")) for k in changed), changed
    assert all(p.requires_grad for p in sr.parameters())
    with pytest.raises(ConfigError, match="fine_tune"):
        SpectralRefiner(width=8, modes=4, layers=2).fine_tune(traj, 1, progress=False)
    with pytest.raises(ConfigError, match="band_weights"):
        SpectralRefiner(band_weights="flat")
