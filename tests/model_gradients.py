"""Gradient checks of whole models against central differences, shared by the
lesson tests. They nudge each parameter in place (the model's own arrays), so
a failure names the parameter."""
import numpy as np

import microseq as ms


def randomize(model, rng):
    """float64 parameters ~ N(0, 1/fan_in): large enough to reach every nonlinearity."""
    model.to(np.float64)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1])
    return model


def assert_matches_finite_differences(loss, model, eps, rtol, atol):
    """Every element of every parameter's gradient == central differences of loss()."""
    model.zero_grad()
    loss().backward()
    for name, p in model.named_parameters():
        flat = p.data.reshape(-1)  # a view: nudging it nudges the parameter
        numeric = np.zeros(flat.size)
        with ms.no_grad():
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + eps
                up = loss().item()
                flat[i] = old - eps
                down = loss().item()
                flat[i] = old
                numeric[i] = (up - down) / (2 * eps)
        grad = np.zeros(p.shape) if p.grad is None else p.grad
        np.testing.assert_allclose(grad.reshape(-1), numeric, rtol=rtol, atol=atol,
                                   err_msg=name)


def assert_directional_derivatives_match(loss, model, rng, eps, rtol, atol):
    """For each parameter and a random direction d: <grad, d> == the central
    difference of loss() along d. One check per parameter, cheap at any size."""
    model.zero_grad()
    loss().backward()
    for name, p in model.named_parameters():
        d = rng.standard_normal(p.shape)
        original = p.data
        with ms.no_grad():
            p.data = original + eps * d
            up = loss().item()
            p.data = original - eps * d
            down = loss().item()
        p.data = original
        numeric = (up - down) / (2 * eps)
        analytic = float(np.sum(p.grad * d))
        assert abs(analytic - numeric) <= atol + rtol * abs(numeric), (name, analytic, numeric)
