"""The Transformer LM bench compares like with like: the nn model and the
hand-derived reference give the same loss and gradients (float64, 1e-10),
and one SGD step moves both to the same parameters."""
import numpy as np
import pytest

import microseq as ms
from bench.bench_transformer import setup
from microseq.optim import SGD
from microseq.reference import transformer_lm_loss_and_grads, transformer_lm_step

pytestmark = pytest.mark.nn


def test_bench_model_and_reference_agree():
    model, _, x, y = setup(vocab=11, d_model=8, nhead=2, batch=3, steps=5)
    model.to(np.float64)
    params = model.state_dict()
    loss = ms.cross_entropy(model(x), y)
    loss.backward()
    ref_loss, grads = transformer_lm_loss_and_grads(params, x, y, num_heads=2)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-12)
    assert sorted(grads) == sorted(params)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name], rtol=1e-10, atol=1e-12, err_msg=name)
    SGD(model.parameters(), lr=0.1).step()
    transformer_lm_step(params, x, y, 2, lr=0.1)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, params[name], rtol=1e-10, atol=1e-12, err_msg=name)
