"""Every new layer against PyTorch in float64 (skipped when torch is not installed): forward, running stats, backward."""
import numpy as np
import pytest

from minicnn import AvgPool2D, BatchNorm1D, BatchNorm2D, Dropout, GlobalAvgPool2D, LeakyReLU, Sigmoid, Tanh

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)
TOL = 1e-9


def _torch_run(module, x, dout):
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out = module(xt)
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), xt.grad.numpy()


CASES = [
    (lambda: LeakyReLU(0.1), lambda: torch.nn.LeakyReLU(0.1), (3, 4, 5, 6)),
    (Tanh, torch.nn.Tanh, (3, 4, 5, 6)),
    (Sigmoid, torch.nn.Sigmoid, (3, 4, 5, 6)),
    (lambda: AvgPool2D(3, 2, 1), lambda: torch.nn.AvgPool2d(3, 2, 1), (2, 3, 7, 8)),
    (lambda: AvgPool2D((2, 3), (1, 2), (1, 1)), lambda: torch.nn.AvgPool2d((2, 3), (1, 2), (1, 1)), (2, 3, 5, 7)),
    (GlobalAvgPool2D, lambda: torch.nn.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
]


@pytest.mark.parametrize("ours, theirs, shape", CASES)
def test_stateless_layers_match_torch(ours, theirs, shape):
    rng = np.random.default_rng(0)
    x = 3 * rng.standard_normal(shape)
    layer, module = ours(), theirs()
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    t_out, t_dx = _torch_run(module, x, dout.reshape(module(torch.from_numpy(x)).shape))
    np.testing.assert_allclose(out, t_out.reshape(out.shape), rtol=0, atol=TOL)
    np.testing.assert_allclose(layer.backward(dout), t_dx, rtol=0, atol=TOL)


@pytest.mark.parametrize("ours, theirs, shape", [(BatchNorm2D, torch.nn.BatchNorm2d, (4, 3, 5, 6)),
                                                 (BatchNorm1D, torch.nn.BatchNorm1d, (7, 5))])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_matches_torch_over_training_steps_and_in_eval(ours, theirs, shape, affine):
    rng = np.random.default_rng(1)
    C = shape[1]
    layer, module = ours(C, momentum=0.2, affine=affine, dtype=np.float64), theirs(C, momentum=0.2, affine=affine).double()
    if affine:
        gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
        layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(gamma))
            module.bias.copy_(torch.from_numpy(beta))
    for step in range(4):
        training = step < 3
        layer.training = training
        module.train(training)
        x, dout = 2 + 3 * rng.standard_normal(shape), rng.standard_normal(shape)
        if affine:
            module.zero_grad()
        out = layer.forward(x)
        t_out, t_dx = _torch_run(module, x, dout)
        np.testing.assert_allclose(out, t_out, rtol=0, atol=TOL)
        np.testing.assert_allclose(layer.backward(dout), t_dx, rtol=0, atol=TOL)
        np.testing.assert_allclose(layer.buffers["running_mean"], module.running_mean.numpy(), rtol=0, atol=TOL)
        np.testing.assert_allclose(layer.buffers["running_var"], module.running_var.numpy(), rtol=0, atol=TOL)
        if affine:
            np.testing.assert_allclose(layer.grads["gamma"], module.weight.grad.numpy(), rtol=0, atol=TOL)
            np.testing.assert_allclose(layer.grads["beta"], module.bias.grad.numpy(), rtol=0, atol=TOL)


def test_dropout_has_torch_semantics():
    # The masks come from different generators; what must agree is the rule: zero or x / (1 - p), identity in eval.
    x = np.random.default_rng(2).uniform(1, 2, (50, 40))
    layer = Dropout(0.3, rng=np.random.default_rng(3))
    out = layer.forward(x)
    t_out = torch.nn.functional.dropout(torch.from_numpy(x), 0.3, training=True).numpy()
    for o in (out, t_out):
        kept = o != 0
        np.testing.assert_allclose(o[kept], x[kept] / 0.7, rtol=0, atol=TOL)
    layer.training = False
    np.testing.assert_array_equal(layer.forward(x), torch.nn.functional.dropout(torch.from_numpy(x), 0.3, training=False).numpy())
