"""Shared exact ground truth for the samplers tests (float64, CPU)."""
import pytest
import torch

from workbench import interpolants
from workbench.problems import PROBLEMS


@pytest.fixture(scope="session")
def gmm2d():
    return PROBLEMS.get("gmm2d")


@pytest.fixture(scope="session")
def vp_reference(gmm2d):
    """VP on [0, 0.99]: 16 exact start states and their exact PF-ODE images."""
    I = interpolants.get("vp")
    x0 = gmm2d.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    return I, gmm2d.field(I, "cpu", torch.float64), x0, gmm2d.reference(I, x0, 0.0, 0.99)


@pytest.fixture(scope="session")
def linear_reference(gmm2d):
    """Linear interpolant on [0, 1]: 16 exact start states and their exact PF-ODE images."""
    I = interpolants.get("linear")
    x0 = gmm2d.sample_start(I, 0.0, 16, torch.Generator().manual_seed(0))
    return I, gmm2d.field(I, "cpu", torch.float64), x0, gmm2d.reference(I, x0, 0.0, 1.0)
