"""Property and edge tests of the safe primitives in `safeloss.ops`."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from safeloss import ops as safe_ops
from safeloss.testing import all_finite, tolerances, value_and_grad
from safeloss.testing import strategies as S
from tests import references as ref
from tests.conftest import BACKEND

VECTOR_SHAPES = st.sampled_from([(3, 4), (5, 2)])



def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -700, 700)))


def check_value_and_grad(fn, x, dtype, compiled, *, bounded=True, **kwargs):
    """Runs fn and asserts the dtype, a finite value, and a NaN-free gradient
    (finite when the exact gradient is bounded)."""
    value, (grad,) = value_and_grad(fn, x, compiled=compiled, **kwargs)
    assert str(value.dtype) == dtype
    assert str(grad.dtype) == dtype
    assert all_finite(value), value
    if bounded:
        assert all_finite(grad), grad
    else:
        assert not np.any(np.isnan(grad.astype(np.float64))), grad
    return value, grad


@given(data=st.data())
def test_safe_sqrt(data, dtype, compiled, device):
    x = data.draw(S.floats(dtype, data.draw(VECTOR_SHAPES)))
    value, grad = check_value_and_grad(safe_ops.safe_sqrt, x, dtype, compiled)
    tolerances.assert_allclose(value, ref.sqrt(x, dtype), dtype)
    assert np.all(grad.astype(np.float64) >= 0)


@given(data=st.data())
def test_safe_log(data, dtype, compiled, device):
    x = data.draw(S.floats(dtype, data.draw(VECTOR_SHAPES)))
    value, _ = check_value_and_grad(safe_ops.safe_log, x, dtype, compiled)
    tolerances.assert_allclose(value, ref.log(x, dtype), dtype)


@given(data=st.data())
def test_softplus(data, dtype, compiled, device):
    x = data.draw(S.floats(dtype, data.draw(VECTOR_SHAPES)))
    value, grad = check_value_and_grad(safe_ops.softplus, x, dtype, compiled)
    tolerances.assert_allclose(value, ref.softplus(x), dtype)
    tolerances.assert_allclose(grad, sigmoid(x), dtype)


@given(data=st.data())
def test_safe_norm(data, dtype, compiled, device):
    x = data.draw(S.embeddings(dtype, data.draw(VECTOR_SHAPES)))
    value, grad = check_value_and_grad(safe_ops.safe_norm, x, dtype, compiled)
    tolerances.assert_allclose(value, ref.norm(x, dtype), dtype)
    # The gradient x / ||x|| is a unit vector (or 0 for the zero vector).
    grad_norms = np.linalg.norm(grad.astype(np.float64), axis=-1)
    assert np.all(grad_norms <= 1 + 8 * tolerances.TOLERANCES[dtype]["rtol"])


@given(data=st.data())
def test_l2_normalize(data, dtype, compiled, device):
    x = data.draw(S.embeddings(dtype, data.draw(VECTOR_SHAPES)))
    value, _ = check_value_and_grad(safe_ops.l2_normalize, x, dtype, compiled)
    norms = ref.norm(x, dtype)[:, None]
    expected = np.where(norms > 0, ref.flush(x, dtype) / np.where(norms > 0, norms, 1), 0)
    tolerances.assert_allclose(value, expected, dtype)


@given(data=st.data())
def test_logsumexp(data, dtype, compiled, device):
    shape = data.draw(VECTOR_SHAPES)
    x = data.draw(S.floats(dtype, shape))
    mask = data.draw(S.hnp.arrays(np.bool_, shape))
    value, grad = check_value_and_grad(
        lambda t, m=mask: safe_ops.logsumexp(t, mask=m), x, dtype, compiled
    )
    tolerances.assert_allclose(value, ref.logsumexp(x, mask=mask), dtype)
    # The gradient is a softmax over the unmasked entries: rows sum to 1 or 0.
    row_sums = grad.astype(np.float64).sum(-1)
    expected = np.where(mask.any(-1), 1.0, 0.0)
    tolerances.assert_allclose(row_sums.astype(grad.dtype), expected, dtype, scale=4)
    assert np.all(grad[~mask] == 0)


@given(data=st.data())
def test_safe_divide(data, dtype, compiled, device):
    shape = data.draw(VECTOR_SHAPES)
    a = data.draw(S.floats(dtype, shape))
    b = data.draw(S.floats(dtype, shape))
    value, grads = value_and_grad(safe_ops.safe_divide, a, b, compiled=compiled)
    assert str(value.dtype) == dtype
    assert all_finite(value)
    assert not any(np.any(np.isnan(g.astype(np.float64))) for g in grads)
    assert all_finite(grads[0])  # d/da = 1/b is bounded by 1/tiny.
    tolerances.assert_allclose(value, ref.divide(a, b, dtype), dtype)


@given(data=st.data())
def test_clip_logits(data, dtype, compiled, device):
    x = data.draw(S.floats(dtype, data.draw(VECTOR_SHAPES)))
    value, grad = check_value_and_grad(safe_ops.clip_logits, x, dtype, compiled)
    # Every logit up to a tenth of the dtype's largest value passes unchanged
    # (subnormals may be flushed to zero: TensorFlow and JAX do so on CPU).
    subnormal = np.abs(x.astype(np.float64)) < float(safe_ops.finfo(dtype).tiny)
    np.testing.assert_array_equal(value[~subnormal], x[~subnormal])
    assert np.all((value[subnormal] == x[subnormal]) | (value[subnormal] == 0))
    np.testing.assert_array_equal(grad.astype(np.float64), 1.0)


# ---- the bad points, pinned one by one -------------------------------------


def test_safe_sqrt_at_zero_has_zero_gradient(dtype, compiled, device):
    x = np.zeros(3, S.numpy_dtype(dtype))
    value, grad = check_value_and_grad(safe_ops.safe_sqrt, x, dtype, compiled)
    assert np.all(value == 0) and np.all(grad == 0)


def test_safe_sqrt_is_exact_at_the_smallest_normal(dtype, compiled, device):
    tiny = float(safe_ops.finfo(dtype).tiny)
    x = np.array([tiny, 4 * tiny, 0.5 * tiny], S.numpy_dtype(dtype))
    value, _ = check_value_and_grad(safe_ops.safe_sqrt, x, dtype, compiled)
    expected = [np.sqrt(tiny), 2 * np.sqrt(tiny), 0.0]
    tolerances.assert_allclose(value, expected, dtype)


def test_softplus_does_not_overflow(dtype, compiled, device):
    big = S.max_magnitude(dtype)
    x = np.array([-big, -100.0, 0.0, 11.5, 100.0, big], np.float64).clip(-big, big)
    x = x.astype(S.numpy_dtype(dtype))
    value, grad = check_value_and_grad(safe_ops.softplus, x, dtype, compiled)
    tolerances.assert_allclose(value, ref.softplus(x), dtype)
    tolerances.assert_allclose(grad, sigmoid(x), dtype)


def test_softplus_keeps_low_precision_dtype(dtype, compiled):
    x = np.array([-3.0, 0.0, 3.0], S.numpy_dtype(dtype))
    value, _ = value_and_grad(safe_ops.softplus, x, compiled=compiled)
    assert str(value.dtype) == dtype


def test_safe_norm_overflow_and_underflow(dtype, compiled, device):
    info = safe_ops.finfo(dtype)
    big, small = S.max_magnitude(dtype), 16 * float(info.tiny)
    x = np.array([[big, big, big], [small, small, 0], [0, 0, 0]], np.float64)
    x = x.astype(S.numpy_dtype(dtype))
    value, grad = check_value_and_grad(safe_ops.safe_norm, x, dtype, compiled)
    tolerances.assert_allclose(value, ref.norm(x, dtype), dtype)
    tolerances.assert_allclose(
        grad, [[3**-0.5] * 3, [2**-0.5, 2**-0.5, 0], [0, 0, 0]], dtype
    )


def test_safe_norm_gradient_survives_a_huge_cotangent(dtype, compiled):
    """A tiny vector under a huge cotangent: scaling the cotangent by 1/s
    before the unit vector would overflow and make 0 * inf = NaN."""
    info = safe_ops.finfo(dtype)
    big, small = S.max_magnitude(dtype), 16 * float(info.tiny)
    x = np.array([[small, 0.0]], S.numpy_dtype(dtype))
    value, (grad,) = value_and_grad(
        lambda t: safe_ops.safe_norm(t) * big, x, compiled=compiled
    )
    tolerances.assert_allclose(grad, [[big, 0.0]], dtype)


def test_safe_norm_saturates_instead_of_inf(dtype, compiled):
    x = np.full((1, 4), float(safe_ops.finfo(dtype).max), S.numpy_dtype(dtype))
    value, grad = check_value_and_grad(safe_ops.safe_norm, x, dtype, compiled)
    assert float(value[0]) == float(safe_ops.finfo(dtype).max)


def test_logsumexp_empty_rows_give_zero(dtype, compiled, device):
    x = np.array([[-np.inf, -np.inf], [1.0, 2.0], [5.0, 7.0]], S.numpy_dtype(dtype))
    mask = np.array([[True, True], [True, True], [False, False]])
    value, (grad,) = value_and_grad(
        lambda t: safe_ops.logsumexp(t, mask=mask), x, compiled=compiled
    )
    assert not np.any(np.isnan(grad.astype(np.float64)))
    assert value[0] == 0 and value[2] == 0
    assert np.all(grad[[0, 2]] == 0)
    tolerances.assert_allclose(value[1:2], [np.logaddexp(1.0, 2.0)], dtype)


def test_logsumexp_of_huge_values(dtype, compiled):
    big = S.max_magnitude(dtype)
    x = np.array([[big, big], [-big, big]], np.float64).astype(S.numpy_dtype(dtype))
    value, grad = check_value_and_grad(safe_ops.logsumexp, x, dtype, compiled)
    tolerances.assert_allclose(value, ref.logsumexp(x), dtype)
    tolerances.assert_allclose(grad, [[0.5, 0.5], [0.0, 1.0]], dtype)


def test_safe_divide_edges(dtype, compiled, device):
    big = float(safe_ops.finfo(dtype).max)
    tiny = float(safe_ops.finfo(dtype).tiny)
    a = np.array([1.0, 0.0, -2.0, big / 2, 6.0], np.float64).astype(S.numpy_dtype(dtype))
    b = np.array([0.0, 0.0, 0.5 * tiny, 0.25, 3.0], np.float64).astype(S.numpy_dtype(dtype))
    value, grads = value_and_grad(safe_ops.safe_divide, a, b, compiled=compiled)
    assert not any(np.any(np.isnan(g.astype(np.float64))) for g in grads)
    tolerances.assert_allclose(value, [0.0, 0.0, 0.0, big, 2.0], dtype)


def test_clip_logits_maps_infinities_to_the_bound(dtype, compiled, device):
    bound = safe_ops.logit_bound(dtype)
    x = np.array([np.inf, -np.inf, 1.0], S.numpy_dtype(dtype))
    value, grad = check_value_and_grad(safe_ops.clip_logits, x, dtype, compiled)
    tolerances.assert_allclose(value, [bound, -bound, 1.0], dtype)
    np.testing.assert_array_equal(grad.astype(np.float64), [0, 0, 1])


def test_non_float_input_is_rejected():
    with pytest.raises(ValueError, match="floating-point.*int32"):
        safe_ops.safe_sqrt(np.array([1, 2], np.int32))


def test_gradients_through_guards_are_exact_at_ordinary_points(dtype, compiled):
    """Away from the guards, the gradient is the textbook one."""
    x = np.array([0.25, 1.0, 4.0], S.numpy_dtype(dtype))
    _, grad = check_value_and_grad(safe_ops.safe_sqrt, x, dtype, compiled)
    tolerances.assert_allclose(grad, [1.0, 0.5, 0.25], dtype)
    _, grad = check_value_and_grad(safe_ops.safe_log, x, dtype, compiled)
    tolerances.assert_allclose(grad, [4.0, 1.0, 0.25], dtype)


def test_mean_keeps_float64_range(compiled):
    """Keras' own mean returns inf here on PyTorch (computed in float32)."""
    x = np.array([[-1.5e307, -1.7e307], [1.0, 2.0]], np.float64)
    value, (grad,) = value_and_grad(lambda t: safe_ops.mean(t), x, compiled=compiled)
    np.testing.assert_allclose(value, [-1.6e307, 1.5], rtol=1e-15)
    np.testing.assert_allclose(grad, np.full((2, 2), 0.5))


if BACKEND == "torch":

    def test_torch_compile_smoke():
        """PyTorch's compiled mode is outside the matrix (the tests run its
        eager mode); this checks that the guards survive `torch.compile`
        (AOT autograd, no code generation) at the zero vector."""
        import torch

        def loss(x):
            return safe_ops.safe_norm(x).sum() + safe_ops.softplus(x * 100).sum()

        x = torch.zeros((2, 3), dtype=torch.float32, requires_grad=True)
        value = torch.compile(loss, backend="aot_eager")(x)
        (grad,) = torch.autograd.grad(value, x)
        assert torch.isfinite(value) and bool(torch.isfinite(grad).all())
        np.testing.assert_allclose(float(value), 6 * np.log(2.0), rtol=1e-6)
        np.testing.assert_allclose(grad.numpy(), np.full((2, 3), 50.0), rtol=1e-6)
