"""The contrastive loss: properties, edge points, shapes, the Keras class."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import safeloss
from safeloss.distances import DISTANCES
from safeloss.testing import all_finite, to_numpy, tolerances, value_and_grad
from safeloss.testing import strategies as S
from tests import references as ref
from tests.conftest import BACKEND

FIXED_SHAPE = (5, 4)


def draw_shape(data, compiled):
    """Every new shape recompiles in compiled mode, and JAX compiles every op
    for every new shape eagerly too: those draw values for one fixed shape."""
    if compiled or BACKEND == "jax":
        return FIXED_SHAPE
    return data.draw(S.shapes(max_batch=6))



def similar_labels(batch):
    """1 (similar) or 0 (dissimilar) per pair, as float32."""
    return st.lists(st.sampled_from([0.0, 1.0]), min_size=batch, max_size=batch).map(
        lambda v: np.asarray(v, np.float32)
    )


def assert_matches_reference(value, similar, distances, margin, dtype, dim=0):
    """Against the float64 definition. Both terms are non-negative, so the
    error is relative to the loss, plus the cancellation of ``margin - d``
    (at most ``margin**2`` relative), with ``2 + dim`` roundings of `d`."""
    assert str(value.dtype) == dtype
    expected = ref.contrastive(similar, distances, margin, dtype)
    tol = tolerances.TOLERANCES[dtype]
    bound = tol["rtol"] * (2 + dim) * (expected + margin**2) + tol["atol"]
    got = value.astype(np.float64)
    assert np.all(np.abs(got - expected) <= bound), (
        f"got {got!r}, expected {expected!r}, bound {bound!r}"
    )


def every_distance(y, pairs):
    """The loss for each distance, divided by 4 (exact) so that their summed
    gradient cannot overflow: one compilation per test, not three."""
    return keras.ops.stack([
        safeloss.contrastive_loss(y, pairs, distance=distance) / 4
        for distance in DISTANCES
    ])


@given(data=st.data())
def test_embedding_pairs_match_reference_without_nan(data, dtype, compiled, device):
    shape = draw_shape(data, compiled)
    pairs = data.draw(S.stacked_embeddings(dtype, 2, shape))
    y = data.draw(similar_labels(shape[0]))
    value, (_, grad) = value_and_grad(every_distance, y, pairs, compiled=compiled)
    assert all_finite(value) and all_finite(grad), (value, grad)
    assert str(grad.dtype) == dtype
    for i, distance in enumerate(DISTANCES):
        loss = (value[i].astype(np.float64) * 4).astype(value.dtype)
        distances = [ref.pair_distance(a, b, distance, dtype) for a, b in pairs]
        assert_matches_reference(loss, y, distances, 1.0, dtype, dim=shape[1])


@given(data=st.data())
def test_distances_match_reference_without_nan(data, dtype, compiled, device):
    """Distances as TensorFlow Addons takes them, (batch,) or (batch, 1);
    any finite value, negative ones included, as TFA computes them."""
    batch = draw_shape(data, compiled)[0]
    d = data.draw(S.floats(dtype, (batch,)))
    y = data.draw(similar_labels(batch))
    value, (_, grad) = value_and_grad(
        safeloss.contrastive_loss, y, d, compiled=compiled, margin=1.0
    )
    assert all_finite(value) and all_finite(grad), (value, grad)
    assert_matches_reference(value, y, d, 1.0, dtype)
    column, _ = value_and_grad(
        safeloss.contrastive_loss, y[:, None], d[:, None], compiled=compiled, margin=1.0
    )
    np.testing.assert_array_equal(column, value)


def test_reference_values():
    """Worked by hand from the definition, margin 1."""
    y = np.array([1, 1, 1, 0, 0, 0])
    d = np.array([0.1, 0.3, 1.3, 0.7, 1.1, 0.5], np.float32)
    value = to_numpy(safeloss.contrastive_loss(y, d))
    np.testing.assert_allclose(value, [0.01, 0.09, 1.69, 0.09, 0.0, 0.25], rtol=1e-6)
    mean = to_numpy(safeloss.ContrastiveLoss()(y, d))
    np.testing.assert_allclose(mean, 2.13 / 6, rtol=1e-6)


def test_pairs_and_their_distances_agree():
    """Two paths: pairs of embeddings, and the distances of those pairs
    (the example of TensorFlow Addons' docstring, distances 8.06, 2, 4.47)."""
    a = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    b = np.array([[5, 9], [3, 6], [1, 8]], np.float32)
    d = safeloss.paired_distances(a, b)
    np.testing.assert_allclose(to_numpy(d), [65**0.5, 2.0, 20**0.5], rtol=1e-6)
    y = np.array([1.0, 0.0, 0.0])
    for margin in (1.0, 3.0):
        from_pairs = safeloss.contrastive_loss(y, np.stack([a, b], 1), margin=margin)
        from_distances = safeloss.contrastive_loss(y, d, margin=margin)
        np.testing.assert_allclose(to_numpy(from_pairs), to_numpy(from_distances), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(from_pairs), [65.0, 1.0, 0.0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("distance", DISTANCES)
def test_identical_pairs(distance, dtype, compiled):
    """Similar pairs at distance 0, where the loss succeeds and the
    hand-written sqrt's gradient is inf: loss 0, gradient 0. Dissimilar
    identical pairs cost margin**2, with a finite gradient. Zero rows too."""
    row = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]] * 2)
    pairs = np.stack([row, row], 1).astype(S.numpy_dtype(dtype))
    y = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    value, (_, grad) = value_and_grad(
        safeloss.contrastive_loss, y, pairs, compiled=compiled,
        margin=2.0, distance=distance,
    )
    # A zero vector has cosine similarity 0 with everything: distance 1.
    zero = 1.0 if distance == "cosine" else 0.0
    expected = [0.0, zero, 4.0, (2.0 - zero) ** 2]
    tolerances.assert_allclose(value, expected, dtype)
    assert all_finite(grad)
    np.testing.assert_allclose(grad[0].astype(np.float64), 0.0, atol=1e-6)


def test_float16_at_300(compiled):
    """300**2 overflows float16: the pull term saturates at 65504, not inf."""
    a = np.array([[300.0, 300.0, 300.0], [300.0, 300.0, 300.0]], np.float16)
    pairs = np.stack([a, -a], 1)
    value, (_, grad) = value_and_grad(
        safeloss.contrastive_loss, np.array([1.0, 0.0]), pairs, compiled=compiled
    )
    np.testing.assert_array_equal(value.astype(np.float64), [65504.0, 0.0])
    assert all_finite(grad)
    d = np.array([300.0, 100.0], np.float16)
    value, (_, grad) = value_and_grad(
        safeloss.contrastive_loss, np.array([1.0, 1.0]), d, compiled=compiled
    )
    np.testing.assert_array_equal(value.astype(np.float64), [65504.0, 10000.0])
    np.testing.assert_array_equal(grad.astype(np.float64), [0.0, 200.0])


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
def test_extreme_magnitudes(dtype, compiled):
    """Similar pairs 2e-30 and 2e30 apart: their squares underflow and
    overflow float32; the gradient 2 (a - b) stays exact where the square
    is representable, and finite everywhere."""
    a = np.array([[1e-30, 0.0], [1e30, 0.0]])
    pairs = np.stack([a, -a], 1).astype(S.numpy_dtype(dtype))
    value, (_, grad) = value_and_grad(
        safeloss.contrastive_loss, np.ones(2), pairs, compiled=compiled
    )
    d = 2 * pairs[:, 0, 0].astype(np.float64)
    assert_matches_reference(value, [1.0, 1.0], d, 1.0, dtype, dim=2)
    assert all_finite(grad)
    tolerances.assert_allclose(grad[0, :, 0], [2 * d[0], -2 * d[0]], dtype, scale=4)
    if dtype == "float64":
        tolerances.assert_allclose(grad[1, :, 0], [2 * d[1], -2 * d[1]], dtype)


def test_class_matches_function_with_labels_of_either_shape():
    rng = np.random.default_rng(0)
    pairs = rng.standard_normal((6, 2, 3)).astype(np.float32)
    y = np.array([1, 0, 1, 0, 0, 1])
    expected = to_numpy(safeloss.contrastive_loss(y, pairs, margin=2.0, distance="cosine"))
    loss = safeloss.ContrastiveLoss(margin=2.0, distance="cosine", reduction="none")
    np.testing.assert_allclose(to_numpy(loss(y, pairs)), expected, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(loss(y[:, None].astype(bool), pairs)), expected, rtol=1e-6)
    weights = np.arange(6.0)
    total = safeloss.ContrastiveLoss(margin=2.0, distance="cosine", reduction="sum")
    np.testing.assert_allclose(to_numpy(total(y, pairs, sample_weight=weights)), expected @ weights, rtol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: safeloss.contrastive_loss(np.ones(4), np.ones((4, 2), np.float32)), r"y_pred.*\(batch,\).*\(batch, 2, dim\).*\(4, 2\)"),
        (lambda: safeloss.contrastive_loss(np.ones(4), np.ones((4, 3, 2), np.float32)), r"y_pred.*\(4, 3, 2\)"),
        (lambda: safeloss.contrastive_loss(np.array([0.0, 2.0]), np.ones(2, np.float32)), r"y_true.*\[0, 1\].*2\.0"),
        (lambda: safeloss.contrastive_loss(np.array([0.0, -1.0]), np.ones(2, np.float32)), r"y_true.*-1\.0"),
        (lambda: safeloss.contrastive_loss(np.ones(3), np.ones(2, np.float32)), r"y_true.*one label per pair \(2\).*\(3,\)"),
        (lambda: safeloss.contrastive_loss(np.ones((2, 2)), np.ones(2, np.float32)), r"y_true.*\(batch,\).*\(2, 2\)"),
        (lambda: safeloss.contrastive_loss(None, np.ones(2, np.float32)), r"y_true.*required.*None"),
        (lambda: safeloss.ContrastiveLoss()(None, np.ones(2, np.float32)), r"y_true.*required.*None"),
        (lambda: safeloss.contrastive_loss(np.ones(2), np.ones(2, np.int32)), r"y_pred.*floating.*int32"),
        (lambda: safeloss.ContrastiveLoss(margin=-0.5), r"margin.*-0\.5"),
        (lambda: safeloss.ContrastiveLoss(distance="l1"), r"distance.*'l1'"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()
