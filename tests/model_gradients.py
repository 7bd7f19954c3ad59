"""Gradient checks of whole models against central differences, shared by the
lesson tests, through microseq.gradcheck's one finite-difference routine; a
failure names the parameter."""
import numpy as np

from microseq.gradcheck import gradcheck_parameters


def randomize(model, rng):
    """float64 parameters ~ N(0, 1/fan_in): large enough to reach every nonlinearity."""
    model.to(np.float64)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1])
    return model


def assert_matches_finite_differences(loss, model, eps, rtol, atol):
    """Every element of every parameter's gradient == central differences of loss()."""
    gradcheck_parameters(loss, model.named_parameters(), eps=eps, rtol=rtol, atol=atol)


def assert_directional_derivatives_match(loss, model, rng, eps, rtol, atol):
    """For each parameter and a random direction d: <grad, d> == the central
    difference of loss() along d. One check per parameter, cheap at any size."""
    gradcheck_parameters(loss, model.named_parameters(), eps=eps, rtol=rtol, atol=atol, rng=rng)
