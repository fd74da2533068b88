"""Tests of the mined triplet losses and their TensorFlow Addons classes."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import safeloss
from safeloss.distances import pairwise_distances
from safeloss.losses._mined_triplet import MINED_TRIPLET_LOSSES
from safeloss.testing import all_finite, tolerances, value_and_grad
from safeloss.testing import strategies as S
from tests import references as ref
from tests.conftest import BACKEND, MODES

MININGS = tuple(MINED_TRIPLET_LOSSES)
# JAX eager compiles every operation for every new shape and dtype, which
# costs minutes here: tests that are not about the mode run under jax.jit.
JIT = BACKEND == "jax"
# Compiled and JAX tests reuse a few shapes: each new shape recompiles.
FIXED_SHAPES = st.sampled_from([(4, 3), (6, 2)])



def clustered(dtype, batch=12, dim=4, classes=3, seed=0):
    """Labels and embeddings in loose clusters: many active triplets, and
    distances far apart enough that no mining decision is a near tie."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(batch) % classes).astype(np.int32)
    centers = rng.standard_normal((classes, dim))
    x = centers[labels] + 0.8 * rng.standard_normal((batch, dim))
    return labels, x.astype(S.numpy_dtype(dtype))


def safeloss_distances(x, distance="euclidean"):
    value, _ = value_and_grad(pairwise_distances, x, compiled=JIT, distance=distance)
    return value.astype(np.float64)


def all_minings(labels, embeddings, block_size=None):
    """The three losses and the distance matrix in one output, so that a
    compiled test compiles once (XLA compilation dominates test time)."""
    parts = [
        MINED_TRIPLET_LOSSES[mining](labels, embeddings, block_size=block_size)
        for mining in MININGS
    ]
    parts.append(keras.ops.reshape(pairwise_distances(embeddings), (-1,)))
    return keras.ops.concatenate(parts)


def run_all(labels, x, compiled, **kwargs):
    """Per-mining values, the distances (float64) and the gradient."""
    value, (_, grad) = value_and_grad(all_minings, labels, x, compiled=compiled, **kwargs)
    n = len(labels)
    values = dict(zip(MININGS, np.split(value[: 3 * n], 3)))
    return values, value[3 * n:].reshape(n, n).astype(np.float64), grad


SOFT_AND_AVERAGE = [
    ("batch_all", {"average": "positive", "margin": 0.3}),
    ("batch_hard", {"soft": True}),
    ("semi_hard", {"soft": True, "margin": 0.2}),
]


@pytest.mark.parametrize("mining", MININGS)
def test_matches_brute_force_reference(mining, dtype, device):
    labels, x = clustered(dtype)
    fn = MINED_TRIPLET_LOSSES[mining]
    value, (label_grad, grad) = value_and_grad(fn, labels, x, compiled=JIT)
    assert label_grad is None
    assert str(value.dtype) == dtype and str(grad.dtype) == dtype
    assert value.shape == (12,) and all_finite(grad)
    # Mining decisions are compared on the distances safeloss computed, so
    # the test checks mining and the loss, not the Gram matrix's rounding.
    expected = ref.mined_triplet_loss(safeloss_distances(x), labels, mining)
    tolerances.assert_allclose(value, expected, dtype, scale=12)
    assert np.mean(expected) > 0.1  # the batch exercises active triplets
    if dtype == "float64":
        exact = ref.mined_triplet_loss(ref.pairwise(x, "euclidean", dtype), labels, mining)
        np.testing.assert_allclose(value, exact, rtol=1e-10, atol=1e-12)


def test_compiled_matches_reference(compiled):
    dtype = "float32"
    labels, x = clustered(dtype)
    values, distances, grad = run_all(labels, x, compiled)
    assert all_finite(grad)
    for mining in MININGS:
        expected = ref.mined_triplet_loss(distances, labels, mining)
        tolerances.assert_allclose(values[mining], expected, dtype, scale=12, err_msg=mining)


@pytest.mark.parametrize("mining, kwargs", SOFT_AND_AVERAGE)
def test_soft_and_average_options_match_reference(mining, kwargs):
    labels, x = clustered("float32")
    value, _ = value_and_grad(MINED_TRIPLET_LOSSES[mining], labels, x, compiled=JIT, **kwargs)
    expected = ref.mined_triplet_loss(safeloss_distances(x), labels, mining, **kwargs)
    tolerances.assert_allclose(value, expected, "float32", scale=12)


@pytest.mark.parametrize("mining, kwargs", [(m, {}) for m in MININGS] + SOFT_AND_AVERAGE)
def test_gradient_matches_finite_differences(mining, kwargs):
    """Float64 central differences of the brute-force loss: the gradient
    reaches the embeddings through the mined distances only, correctly."""
    labels, x = clustered("float64", batch=8, dim=3, classes=2, seed=1)
    _, (_, grad) = value_and_grad(MINED_TRIPLET_LOSSES[mining], labels, x, compiled=JIT, **kwargs)

    def loss(points):
        d = ref.pairwise(points, "euclidean", "float64")
        return np.sum(ref.mined_triplet_loss(d, labels, mining, **kwargs))

    step = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        shift = np.zeros_like(x)
        shift[index] = step
        numeric[index] = (loss(x + shift) - loss(x - shift)) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [mode == "compiled" for mode in MODES])
def test_blocks_agree_with_one_block(compiled):
    """Mining a few anchors at a time changes nothing, values or gradients:
    compiled, the blocks run in a loop whose last block (rows 7-9 here)
    overlaps the one before; eager, in a Python loop."""
    labels, x = clustered("float32", batch=10)
    whole, _, whole_grad = run_all(labels, x, compiled)
    blocked, _, blocked_grad = run_all(labels, x, compiled, block_size=3)
    for mining in MININGS:
        np.testing.assert_allclose(blocked[mining], whole[mining], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(blocked_grad, whole_grad, rtol=1e-5, atol=1e-6)


# Compiled: two dtypes only, each XLA compilation costs seconds.
@pytest.mark.parametrize(
    "dtype, compiled",
    [(d, False) for d in (("float32",) if JIT else S.DTYPES)]
    + [(d, True) for d in ("float16", "float32") if "compiled" in MODES],
)
@given(data=st.data())
def test_finite_for_any_finite_input(data, dtype, compiled):
    """No NaN or inf, in the per-anchor values or the gradient, for extreme
    magnitudes, duplicates, zero rows, one class and all-distinct labels;
    values within rounding of the brute force on the same distances."""
    fixed = compiled or JIT
    shape = data.draw(st.just((6, 3)) if fixed else S.shapes(max_batch=6))
    x = data.draw(S.embeddings(dtype, shape))
    labels = data.draw(S.labels(shape[0]))
    values, distances, grad = run_all(labels, x, compiled)
    assert all_finite(grad)
    big = float(safeloss.ops.finfo(dtype).max)
    rtol = tolerances.TOLERANCES[dtype]["rtol"]
    for mining, value in values.items():
        assert str(value.dtype) == dtype and value.shape == (shape[0],)
        assert all_finite(value) and np.all(value.astype(np.float64) >= 0), mining
        expected = ref.mined_triplet_loss(distances, labels, mining)
        if np.all(np.abs(expected) < big / 10):
            # Sums of up to batch**2 terms, each rounded relative to the
            # largest distance in its row.
            bound = rtol * shape[0] ** 2 * max(1.0, float(np.max(distances)), float(np.max(expected)))
            error = np.abs(value.astype(np.float64) - expected)
            assert np.all(error <= bound), (mining, value, expected)


NOTHING_VALID = {
    "one class": np.zeros(5, np.int32),
    "all distinct": np.arange(5, dtype=np.int32),
}


@pytest.mark.parametrize("case", sorted(NOTHING_VALID))
def test_nothing_valid_gives_zero_with_zero_gradient(case, compiled):
    labels = NOTHING_VALID[case]
    x = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    values, _, grad = run_all(labels, x, compiled)
    for mining, value in values.items():
        np.testing.assert_array_equal(value, 0.0, err_msg=mining)
    # The distance matrix is part of run_all's output; its own gradient is
    # not zero, so check the losses' gradient alone, eagerly.
    for mining, fn in MINED_TRIPLET_LOSSES.items():
        _, (_, grad) = value_and_grad(fn, labels, x, compiled=JIT)
        np.testing.assert_array_equal(grad, 0.0, err_msg=mining)


@pytest.mark.parametrize("mining", MININGS)
def test_batch_of_one_duplicates_and_zeros(mining):
    fn = MINED_TRIPLET_LOSSES[mining]
    value, (_, grad) = value_and_grad(fn, np.array([3], np.int32), np.ones((1, 4), np.float32), compiled=JIT)
    assert value.shape == (1,) and float(value[0]) == 0.0 and all_finite(grad)
    # Identical embeddings: every distance 0, every triplet loss = margin.
    labels = np.array([0, 0, 1, 1], np.int32)
    value, (_, grad) = value_and_grad(fn, labels, np.zeros((4, 3), np.float32), compiled=JIT)
    np.testing.assert_allclose(np.mean(value), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(grad, 0.0)


def test_semi_hard_ties_pick_a_strictly_farther_negative():
    """A negative exactly as far as the positive is not semi-hard: the
    next farther one is chosen (TFA compares with `greater`)."""
    x = np.array([[0.0], [1.0], [-1.0], [2.0]], np.float32)
    labels = np.array([0, 0, 1, 1], np.int32)
    value, _ = value_and_grad(MINED_TRIPLET_LOSSES["semi_hard"], labels, x, compiled=JIT)
    # Anchor 0, positive at 1: negatives at distance 1 (tie) and 2 -> 1 - 2 + 1.
    per_pair = ref.mined_triplet_sums(ref.pairwise(x, "euclidean", "float32"), labels, "semi_hard")[0]
    assert per_pair[0] == 0.0
    np.testing.assert_allclose(value, ref.mined_triplet_loss(
        ref.pairwise(x, "euclidean", "float32"), labels, "semi_hard"), rtol=1e-6)


def test_batch_hard_in_float64_beyond_float32_range():
    """Embeddings up to 1e307: Keras' JAX `argmin` on CPU read every
    distance as a float32 inf, and batch-hard mined column 0 (off by 0.12
    of the largest distance in the accuracy benchmark)."""
    labels, x = clustered("float64")
    x = x / np.max(np.abs(x)) * 1e307
    value, (_, grad) = value_and_grad(
        MINED_TRIPLET_LOSSES["batch_hard"], labels, x, compiled=JIT
    )
    assert all_finite(grad)
    d = ref.pairwise(x, "euclidean", "float64")
    exact = ref.mined_triplet_loss(d, labels, "batch_hard")
    assert np.max(exact) > 1e306  # active triplets at this scale
    np.testing.assert_allclose(value, exact, rtol=1e-12, atol=1e-12 * np.max(d))


@pytest.mark.parametrize("mining", MININGS)
def test_negatives_at_the_largest_distance(mining):
    """Positives at distance 0, negatives at a distance that saturates at
    float32's largest value: every triplet is satisfied. The mining once
    let those negatives tie with its sentinel for the other columns (the
    same largest value) and took column 0, a positive: a loss of 1."""
    x = np.array([[-3e38], [-3e38], [3e38], [3e38]], np.float32)
    labels = np.array([0, 0, 1, 1], np.int32)
    value, (_, grad) = value_and_grad(MINED_TRIPLET_LOSSES[mining], labels, x, compiled=JIT)
    np.testing.assert_array_equal(value, 0.0)
    assert all_finite(grad)


def test_batch_all_counts_huge_distances_without_overflow():
    """Prefix sums of distances near float32's limit would overflow and
    subtract inf from inf; in units of the row's largest distance they do
    not."""
    big = 1e37
    x = np.array([[0.0], [big], [-big], [3 * big]], np.float32)
    labels = np.array([0, 0, 1, 1], np.int32)
    value, (_, grad) = value_and_grad(MINED_TRIPLET_LOSSES["batch_all"], labels, x, compiled=JIT)
    assert all_finite(value) and all_finite(grad)
    expected = ref.mined_triplet_loss(ref.pairwise(x, "euclidean", "float32"), labels, "batch_all")
    # float32 cannot hold d + 1 for d near 1e37: errors are relative to d.
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6 * 3 * big)
    assert float(np.max(value)) > big


# TensorFlow Addons 0.23's formulas, written out in NumPy from its source
# (`triplet_semihard_loss`, `triplet_hard_loss`), phantom losses included:
# a masked maximum over an empty mask is the row's minimum, and a masked
# minimum over an empty mask its maximum.
def tfa_semi_hard(d, labels, margin):
    n = len(labels)
    total, pairs = 0.0, 0
    for a in range(n):
        negatives = d[a][labels != labels[a]]
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            farther = negatives[negatives > d[a, p]]
            if farther.size:
                chosen = farther.min()
            else:
                chosen = negatives.max() if negatives.size else d[a].min()
            total += max(margin + d[a, p] - chosen, 0.0)
            pairs += 1
    return total / pairs


def tfa_hard(d, labels, margin, soft):
    losses = []
    for a in range(len(labels)):
        same = labels == labels[a]
        same[a] = False
        hardest_p = d[a][same].max() if same.any() else d[a].min()
        others = labels != labels[a]
        hardest_n = d[a][others].min() if others.any() else d[a].max()
        gap = hardest_p - hardest_n
        losses.append(np.log1p(np.exp(gap)) if soft else max(gap + margin, 0.0))
    return float(np.mean(losses))


TFA_METRICS = {"L2": "euclidean", "squared-L2": "squared_euclidean", "angular": "cosine"}


@pytest.mark.parametrize("metric", sorted(TFA_METRICS))
def test_tensorflow_addons_values_where_every_anchor_is_valid(metric):
    labels, x = clustered("float64", batch=9, classes=3, seed=3)
    d = ref.pairwise(x, TFA_METRICS[metric], "float64")
    semi = safeloss.TripletSemiHardLoss(margin=0.7, distance_metric=metric, dtype="float64")
    np.testing.assert_allclose(float(semi(labels, x)), tfa_semi_hard(d, labels, 0.7), rtol=1e-10)
    for soft in (False, True):
        hard = safeloss.TripletHardLoss(margin=0.7, soft=soft, distance_metric=metric, dtype="float64")
        np.testing.assert_allclose(float(hard(labels, x)), tfa_hard(d, labels, 0.7, soft), rtol=1e-10)


def test_no_phantom_loss_where_tensorflow_addons_has_one():
    """Class 2 has one sample: TFA gives it a hardest positive of 0 and adds
    a loss; safeloss leaves that anchor out of the mean."""
    x = np.array([[0.0], [0.1], [5.0], [5.1], [5.5]])
    labels = np.array([0, 0, 1, 1, 2])
    d = ref.pairwise(x, "euclidean", "float64")
    ours = float(safeloss.TripletHardLoss(dtype="float64")(labels, x))
    np.testing.assert_allclose(ours, np.mean(ref.mined_triplet_loss(d, labels, "batch_hard")), rtol=1e-12)
    # TFA: the singleton's hardest positive is 0, its loss 0 - 0.4 + 1.
    np.testing.assert_allclose(tfa_hard(d, labels, 1.0, False), (4 * ours + 0.6) / 5, rtol=1e-12)
    one_class = safeloss.TripletSemiHardLoss(dtype="float64")(np.zeros(4), x[:4])
    assert float(one_class) == 0.0  # TFA: margin + d_ap - 0, a phantom loss


def test_reduction_none_and_sample_weight():
    labels, x = clustered("float32", batch=8, classes=2, seed=4)
    per_anchor = safeloss.TripletSemiHardLoss(reduction="none")(labels, x)
    mean = safeloss.TripletSemiHardLoss()(labels, x)
    assert tuple(per_anchor.shape) == (8,)
    np.testing.assert_allclose(np.mean(np.asarray(per_anchor)), float(mean), rtol=1e-6)
    weights = np.linspace(0.0, 2.0, 8).astype(np.float32)
    weighted = safeloss.TripletSemiHardLoss()(labels, x, sample_weight=weights)
    np.testing.assert_allclose(
        float(weighted), np.mean(np.asarray(per_anchor) * weights), rtol=1e-6
    )


def test_labels_of_shape_batch_by_one_and_float_integers():
    labels, x = clustered("float32", batch=8, classes=2)
    loss = safeloss.TripletHardLoss()
    base = float(loss(labels, x))
    np.testing.assert_allclose(float(loss(labels[:, None], x)), base)
    np.testing.assert_allclose(float(loss(labels.astype(np.float32), x)), base)


@pytest.mark.parametrize(
    "mining, kwargs",
    [(m, {"margin": 0.5, "distance": "squared_euclidean"}) for m in MININGS]
    + [("batch_hard", {"soft": True, "distance": "cosine"})],
)
def test_triplet_loss_class_with_mining(mining, kwargs):
    """`TripletLoss(mining=...)` is the function of that mode, reduced; it
    takes labels of shape (batch, 1) and weights anchors."""
    labels, x = clustered("float32")
    per_anchor = keras.ops.convert_to_numpy(MINED_TRIPLET_LOSSES[mining](labels, x, **kwargs))
    loss = safeloss.TripletLoss(mining=mining, **kwargs)
    np.testing.assert_allclose(float(loss(labels[:, None], x)), np.mean(per_anchor), rtol=1e-6)
    weights = np.linspace(0.5, 2.0, len(labels)).astype(np.float32)
    np.testing.assert_allclose(
        float(loss(labels, x, sample_weight=weights)), np.mean(per_anchor * weights), rtol=1e-6
    )
    none = safeloss.TripletLoss(mining=mining, reduction="none", **kwargs)(labels, x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(none), per_anchor, rtol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: MINED_TRIPLET_LOSSES["semi_hard"](np.zeros((2, 2), np.int32), np.ones((2, 3), np.float32)), r"labels.*\(batch,\) or \(batch, 1\).*\(2, 2\)"),
        (lambda: MINED_TRIPLET_LOSSES["semi_hard"](np.zeros(3, np.int32), np.ones((2, 3), np.float32)), r"labels.*expected 2 labels.*\(3,\)"),
        (lambda: MINED_TRIPLET_LOSSES["batch_hard"](np.array([0.5, 1.0]), np.ones((2, 3), np.float32)), r"labels.*non-integer value"),
        (lambda: MINED_TRIPLET_LOSSES["batch_hard"](np.zeros(2, np.int32), np.ones((2, 3, 1), np.float32)), r"embeddings.*rank 2.*\(2, 3, 1\)"),
        (lambda: MINED_TRIPLET_LOSSES["batch_hard"](np.zeros(2, np.int32), np.ones((2, 3), np.int32)), r"embeddings.*floating.*int32"),
        (lambda: MINED_TRIPLET_LOSSES["batch_hard"](np.zeros(2, np.int32), np.ones((2, 3), np.float32), distance="L2"), r"distance.*'L2'"),
        (lambda: MINED_TRIPLET_LOSSES["batch_all"](np.zeros(2, np.int32), np.ones((2, 3), np.float32), soft=True), r"soft=True.*batch-all"),
        (lambda: MINED_TRIPLET_LOSSES["batch_all"](np.zeros(2, np.int32), np.ones((2, 3), np.float32), average="all"), r"average.*'all'"),
        (lambda: MINED_TRIPLET_LOSSES["semi_hard"](np.zeros(2, np.int32), np.ones((2, 3), np.float32), margin=float("nan")), r"margin.*finite"),
        (lambda: MINED_TRIPLET_LOSSES["semi_hard"](np.zeros(2, np.int32), np.ones((2, 3), np.float32), block_size=0), r"block_size.*positive.*0"),
        (lambda: safeloss.TripletSemiHardLoss(distance_metric="euclidean"), r"distance_metric.*'L2'.*'euclidean'"),
        (lambda: safeloss.TripletHardLoss(distance_metric=len), r"distance_metric"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _unknown_batch_size_in_a_tensorflow_graph():
    """Keras may trace `fit` with the batch dimension unknown: mining then
    runs as one block, with a binary search of 32 rounds."""
    import tensorflow as tf

    labels, x = clustered("float32")
    signature = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4], tf.float32)]
    graph = tf.function(all_minings, input_signature=signature)
    np.testing.assert_allclose(graph(labels, x).numpy(), np.asarray(all_minings(labels, x)), rtol=1e-6)


# Only TensorFlow traces graphs with an unknown batch dimension.
if BACKEND == "tensorflow":
    test_unknown_batch_size_in_a_tensorflow_graph = _unknown_batch_size_in_a_tensorflow_graph


def test_keras_fit_lowers_the_loss():
    keras.utils.set_random_seed(0)
    labels, x = clustered("float32", batch=32, dim=6, classes=4, seed=5)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=safeloss.TripletSemiHardLoss())
    history = model.fit(x, labels, batch_size=32, epochs=15, verbose=0).history["loss"]
    assert all(np.isfinite(history)) and history[-1] < history[0]
