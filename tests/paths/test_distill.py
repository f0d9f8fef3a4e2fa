"""One-step distillation against the exact Gaussian flow map (an affine student can represent it exactly)."""
import pytest
import torch

from workbench import interpolants, solvers
from workbench.errors import ConfigError
from workbench.models.field import Field
from workbench.models.gmm import GaussianMixture
from workbench.training.distill import DistillConfig, distill, pseudo_huber


class Affine(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = torch.nn.Linear(d, d, dtype=torch.float64)

    def forward(self, x, t):
        return self.lin(x)


@pytest.mark.parametrize("loss", ["l2", "pseudo_huber"])
def test_affine_student_recovers_the_exact_gaussian_flow_map(loss):
    lin = interpolants.get("linear")
    cov = torch.tensor([[[1.5, 0.6], [0.6, 0.8]]], dtype=torch.float64)
    gm = GaussianMixture(torch.tensor([[2.0, -1.0]]), cov)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2000, 2, dtype=torch.float64, generator=g)
    x1 = gm.flow_map(x0, 0.0, 1.0, lin)  # the exact teacher: x1 = μ + Σ^{1/2} x0
    torch.manual_seed(0)
    student = Affine(2)
    res = distill(student, x0, x1, DistillConfig(steps=400, batch_size=256, lr=0.03, loss=loss))
    assert res.losses[-1] < 0.05 * res.losses[0]
    with torch.no_grad():
        M = torch.eye(2, dtype=torch.float64) + student.lin.weight
        sqrt_cov = gm.eigvecs[0] @ torch.diag(gm.eigvals[0].sqrt()) @ gm.eigvecs[0].T
        assert torch.allclose(M, sqrt_cov, atol=0.02), (M, sqrt_cov)
        assert torch.allclose(student.lin.bias, gm.means[0], atol=0.02)
        # the student is an ordinary velocity field: one Euler step at NFE 1 is the generator
        out = solvers.get("euler").sample(Field(student, lin, "velocity"), x0[:100], 1)
        assert out.nfe == 1 and torch.allclose(out.x, x1[:100], atol=0.05)


def test_pseudo_huber_and_bad_input():
    a, b = torch.zeros(4, 3), torch.ones(4, 3)
    c = 0.1
    assert float(pseudo_huber(a, b, c)) == pytest.approx((3 + c * c) ** 0.5 - c)
    assert float(pseudo_huber(a, a, c)) == 0.0
    with pytest.raises(ConfigError, match="loss"):
        DistillConfig(loss="l1")
    with pytest.raises(ConfigError, match="steps"):
        DistillConfig(steps=0)
    with pytest.raises(ConfigError, match="pairs"):
        distill(Affine(2), torch.zeros(3, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64))
