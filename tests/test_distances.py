"""Property and edge tests of `safeloss.distances`."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from safeloss import ops as safe_ops
from safeloss.distances import DISTANCES, paired_distances, pairwise_distances
from safeloss.testing import all_finite, tolerances, value_and_grad
from safeloss.testing import strategies as S
from tests import references as ref
from tests.conftest import BACKEND

# Compiled tests reuse a few shapes: each new shape recompiles. JAX compiles
# every eager op per shape too, so its eager tests use them as well.
FIXED_SHAPES = st.sampled_from([(4, 3), (6, 5)])



def assert_pairwise_matches_reference(value, x, distance, dtype, compute_dtype=None):
    x64 = ref.flush(x, dtype)
    n, dim = x64.shape
    expected = ref.pairwise(x64, distance, dtype)
    if distance == "cosine":
        tolerances.assert_allclose(value, expected, dtype, scale=2 + dim)
        return
    # Compare squares pair by pair in units of the pair's own scale (an exact
    # power of two), so that float64 itself cannot overflow or underflow.
    got = value.astype(np.float64)
    for i in range(n):
        for j in range(n):
            # Units of the pair's own scale (an exact power of two), divided
            # in twice rather than squared, so float64 cannot overflow or
            # underflow on the way.
            unit = ref.power_of_two_scale(x64[i], x64[j])
            a, b = x64[i] / unit, x64[j] / unit
            if distance == "euclidean":
                got_sq, ref_sq = (got[i, j] / unit) ** 2, (expected[i, j] / unit) ** 2
            else:
                got_sq, ref_sq = got[i, j] / unit / unit, expected[i, j] / unit / unit
            tolerances.assert_gram_close(
                np.array(got_sq),
                np.array(ref_sq),
                np.array(np.sum(a * a) + np.sum(b * b)),
                dtype,
                dim,
                compute_dtype=compute_dtype,
                floor=float(safe_ops.finfo(dtype).tiny) / unit / unit,
                err_msg=f"pair ({i}, {j})",
            )


@pytest.mark.parametrize("distance", DISTANCES)
@given(data=st.data())
def test_pairwise_distances(data, distance, dtype, compiled, device):
    shape = data.draw(FIXED_SHAPES if compiled or BACKEND == "jax" else S.shapes(max_batch=6))
    x = data.draw(S.embeddings(dtype, shape))
    value, (grad,) = value_and_grad(
        pairwise_distances, x, compiled=compiled, distance=distance
    )
    assert str(value.dtype) == dtype and str(grad.dtype) == dtype
    assert all_finite(value) and all_finite(grad)
    assert np.all(np.diag(value) == 0)
    assert np.all(value.astype(np.float64) >= 0)
    np.testing.assert_array_equal(value, value.T)
    assert_pairwise_matches_reference(value, x, distance, dtype)


@pytest.mark.parametrize("distance", DISTANCES)
@given(data=st.data())
def test_paired_distances(data, distance, dtype, compiled, device):
    shape = data.draw(FIXED_SHAPES if compiled or BACKEND == "jax" else S.shapes(max_batch=6))
    stack = data.draw(S.stacked_embeddings(dtype, 2, shape))
    a, b = stack[:, 0], stack[:, 1]
    value, grads = value_and_grad(
        paired_distances, a, b, compiled=compiled, distance=distance
    )
    assert str(value.dtype) == dtype
    assert all_finite(value) and all(all_finite(g) for g in grads)
    expected = [ref.pair_distance(ai, bi, distance, dtype) for ai, bi in zip(a, b)]
    # Paired distances do not go through a Gram matrix: relative accuracy.
    tolerances.assert_allclose(value, expected, dtype, scale=1 + shape[1])


def test_pairwise_duplicates_and_zero_rows_have_zero_gradient(dtype, compiled, device):
    x = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], S.numpy_dtype(dtype))
    value, (grad,) = value_and_grad(
        lambda t: pairwise_distances(t)[0, 1], x, compiled=compiled
    )
    assert float(value) == 0.0
    np.testing.assert_array_equal(grad.astype(np.float64), 0.0)


def test_paired_identical_rows_have_finite_gradient(dtype, compiled, device):
    """The siamese story: anchor == positive gives sqrt(0) in the textbook
    formula, an infinite slope, and 0 * inf = NaN."""
    a = np.array([[0.5, -1.0, 2.0]], S.numpy_dtype(dtype))
    value, grads = value_and_grad(paired_distances, a, a.copy(), compiled=compiled)
    assert float(value[0]) == 0.0
    for g in grads:
        np.testing.assert_array_equal(g.astype(np.float64), 0.0)


def test_float16_at_300_does_not_overflow(compiled):
    """300**2 * 3 overflows float16 (max 65504) in the textbook formula."""
    x = np.array([[300.0, 300.0, 300.0], [-300.0, -300.0, -300.0]], np.float16)
    value, (grad,) = value_and_grad(pairwise_distances, x, compiled=compiled)
    tolerances.assert_allclose(value, [[0, 600 * 3**0.5], [600 * 3**0.5, 0]], "float16")
    assert all_finite(grad)
    squared, _ = value_and_grad(
        pairwise_distances, x, compiled=compiled, distance="squared_euclidean"
    )
    assert float(squared[0, 1]) == 65504.0  # saturates, not inf


def test_huge_and_tiny_rows_in_one_batch(dtype, compiled):
    """Per-row scaling keeps tiny pairs accurate beside huge ones."""
    big, tiny = S.max_magnitude(dtype), 64 * float(safe_ops.finfo(dtype).tiny)
    x = np.array([[big, 0.0], [tiny, 0.0], [0.0, tiny]], np.float64).astype(S.numpy_dtype(dtype))
    value, (grad,) = value_and_grad(pairwise_distances, x, compiled=compiled)
    assert all_finite(grad)
    got = value.astype(np.float64)
    tiny_rounded = float(x[1, 0])
    np.testing.assert_allclose(got[1, 2], tiny_rounded * 2**0.5, rtol=tolerances.TOLERANCES[dtype]["rtol"] * 4)
    np.testing.assert_allclose(got[0, 1], float(x[0, 0]), rtol=tolerances.TOLERANCES[dtype]["rtol"])


def test_low_precision_gram_emulating_tf32(compiled):
    """GPUs multiply float32 matrices in TF32 by default; a bfloat16 Gram
    product emulates it: no NaN, and within the norm-scaled tolerance."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    x[1] = x[0]
    x[2] = 0
    value, (grad,) = value_and_grad(
        pairwise_distances, x, compiled=compiled, matmul_dtype="bfloat16"
    )
    assert all_finite(value) and all_finite(grad)
    assert np.all(np.diag(value) == 0)
    assert_pairwise_matches_reference(value, x, "euclidean", "float32", compute_dtype="bfloat16")


def test_float64_stays_float64():
    x = np.ones((3, 2), np.float64)
    for distance in DISTANCES:
        assert str(np.asarray(value_and_grad(pairwise_distances, x, distance=distance)[0]).dtype) == "float64"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pairwise_distances(np.ones((2, 3, 4), np.float32)), r"embeddings.*rank 2.*\(2, 3, 4\)"),
        (lambda: pairwise_distances(np.ones((2, 3), np.int32)), r"embeddings.*floating.*int32"),
        (lambda: pairwise_distances(np.ones((2, 3), np.float32), "manhattan"), r"distance.*'manhattan'"),
        (lambda: paired_distances(np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)), r"same shape.*\(2, 3\).*\(2, 4\)"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()
