"""Tests of `safeloss.mining`: masks, blocks, sorting and counting."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import ops

from safeloss import mining
from safeloss.distances import DISTANCES, pairwise_distances
from safeloss.ops import finfo
from safeloss.testing import strategies as S
from safeloss.testing import tolerances, value_and_grad


def run(fn, *inputs, compiled=False):
    """`fn`'s value on the backend, eager or compiled (its output is cast to
    float64 so the shared harness can run it)."""
    value, _ = value_and_grad(
        lambda *xs: ops.cast(fn(*xs), "float64"), *inputs, compiled=compiled
    )
    return np.asarray(value)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_sort_keys_order_like_the_values(dtype):
    """Every pair of keys compares as its values do: across signs, at
    -0.0 == 0.0, the smallest normal and largest finite values, infinities.
    (Subnormals are left out: TensorFlow and JAX on CPU compare them as 0,
    and so do the keys.)"""
    info = finfo(dtype)
    tiny, big = float(info.tiny), float(info.max)
    values = np.array(
        [-np.inf, -big, -1.5, -tiny, -0.0, 0.0, tiny, 1.0, 1.5, big, np.inf,
         1.0, -1.5],
        S.numpy_dtype(dtype),
    )
    keys = ops.convert_to_numpy(mining.sort_keys(ops.convert_to_tensor(values, dtype)))
    def comparisons(x):
        return np.greater.outer(x, x).astype(int) - np.less.outer(x, x)

    np.testing.assert_array_equal(comparisons(keys), comparisons(values.astype(np.float64)))


def test_columns_by_rank_picks_the_lowest_column_of_a_run(compiled):
    """Mining relies on it: the first entry of a run of equal negative
    distances is the lowest of their columns, as a stable argsort orders
    them (pinned on every backend, eager and compiled)."""
    d = np.array([[2.0, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0, 0.0] * 4] * 3, np.float32)
    d[1] = 0.0  # all tied
    negative = np.ones(d.shape, bool)
    negative[2, ::3] = False

    def first_of_runs(rows, negative):
        keys = mining.sort_keys(rows)
        sorted_keys, count = mining.sorted_negatives(keys, negative)
        return mining.columns_by_rank(keys, sorted_keys, count, negative)

    got = run(first_of_runs, d, negative, compiled=compiled)
    for r in range(3):
        columns = np.flatnonzero(negative[r])
        stable = columns[np.argsort(d[r, columns], kind="stable")]
        ordered = d[r, stable]
        run_starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        np.testing.assert_array_equal(got[r, run_starts], stable[run_starts])
        assert np.all((got[r] >= 0) & (got[r] < d.shape[1]))


def test_anchor_blocks():
    assert mining.anchor_blocks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert mining.anchor_blocks(3) == [(0, 3)]
    assert mining.anchor_blocks(8192) == [(i, i + 1024) for i in range(0, 8192, 1024)]
    assert mining.anchor_blocks(None) == [(0, None)]
    assert mining.anchor_blocks(0) == [(0, 0)]
    with pytest.raises(ValueError, match="block_size.*positive.*-1"):
        mining.anchor_blocks(4, -1)


def test_label_masks_for_a_block():
    labels = np.array([0, 1, 0, 2, 1], np.int32)
    positive, negative = mining.label_masks(ops.convert_to_tensor(labels), 1, 4)
    same = labels[1:4, None] == labels[None, :]
    expected_positive = same & (np.arange(1, 4)[:, None] != np.arange(5)[None, :])
    np.testing.assert_array_equal(ops.convert_to_numpy(positive), expected_positive)
    np.testing.assert_array_equal(ops.convert_to_numpy(negative), ~same)


@given(data=st.data())
def test_count_sorted_below_matches_searchsorted(data):
    """Batched binary search against NumPy's `searchsorted`, ties included
    (values drawn from a few integers), for both sides."""
    width = data.draw(st.sampled_from([1, 5, 8]))
    rows = np.sort(np.asarray(data.draw(st.lists(
        st.lists(st.integers(0, 4), min_size=width, max_size=width),
        min_size=3, max_size=3,
    )), np.float32), axis=1)
    count = np.asarray(data.draw(st.lists(st.integers(0, width), min_size=3, max_size=3)), np.int32)[:, None]
    queries = np.asarray(data.draw(st.lists(
        st.lists(st.integers(-1, 5), min_size=4, max_size=4), min_size=3, max_size=3,
    )), np.float32) + 0.0
    for strict in (True, False):
        got = ops.convert_to_numpy(mining.count_sorted_below(rows, count, queries, strict))
        side = "left" if strict else "right"
        expected = [
            np.searchsorted(rows[r, : count[r, 0]], queries[r], side=side)
            for r in range(3)
        ]
        np.testing.assert_array_equal(got, expected)


def brute_semi_hard(d, negative):
    chosen = np.zeros(d.shape, np.int64)
    for a in range(d.shape[0]):
        columns = np.flatnonzero(negative[a])
        for j in range(d.shape[1]):
            farther = [c for c in columns if d[a, c] > d[a, j]]
            pool = farther or list(columns)
            pick = min if farther else max
            chosen[a, j] = pick(pool, key=lambda c: d[a, c]) if pool else -1
    return chosen


def test_semi_hard_negative_columns_with_ties(compiled):
    """Distances drawn from a few values, so ties between negatives and the
    positive distance are everywhere; the chosen distance must equal the
    brute-force one."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1], np.int32)
    d = rng.integers(0, 4, (8, 8)).astype(np.float32)
    d = np.minimum(d, d.T)
    np.fill_diagonal(d, 0)

    def chosen_distance(rows, y):
        positive, negative = mining.label_masks(y, 2, 7)
        columns = mining.semi_hard_negative_columns(rows, positive, negative)
        return ops.take_along_axis(rows, columns, axis=1)

    got = run(chosen_distance, d[2:7], labels, compiled=compiled)
    negative = labels[2:7, None] != labels[None, :]
    expected_columns = brute_semi_hard(d[2:7], negative)
    np.testing.assert_array_equal(got, np.take_along_axis(d[2:7], expected_columns, axis=1))


def hardest_columns(rows, labels):
    positive, negative = mining.label_masks(labels)
    far, near = mining.hardest_columns(rows, positive, negative)
    return ops.stack([far, near])


def test_hardest_columns(compiled):
    d = np.array([[0, 3, 1, 2], [3, 0, 5, 4], [1, 5, 0, 1], [2, 4, 1, 0]], np.float32)
    labels = np.array([0, 0, 1, 1], np.int32)

    got = run(hardest_columns, d, labels, compiled=compiled)
    np.testing.assert_array_equal(got, [[1, 0, 3, 2], [2, 3, 0, 0]])


def test_hardest_columns_in_float64_and_at_saturation(compiled):
    """Keras 3.15's JAX `argmax`/`argmin` on CPU compute float64 in float32;
    mining with them read every distance beyond float32's range as inf and
    took column 0 (a batch-hard error of 0.12 at magnitude 1.8e307 in the
    accuracy benchmark). Row 0 is beyond float32's range, row 1 has its only
    negatives at the largest float64 (the sentinel of the other columns),
    row 2 has negatives that tie in float32, row 3 a tie (lowest column)."""
    big = np.finfo(np.float64).max
    d = np.array([
        [0.0, 5e307, 1e307, 3e307],
        [1.0, 0.0, big, big],
        [1 + 2e-12, 1 + 1e-12, 0.0, 3.0],
        [2.0, 2.0, 1.0, 0.0],
    ])
    labels = np.array([0, 0, 1, 1], np.int32)

    got = run(hardest_columns, d, labels, compiled=compiled)
    np.testing.assert_array_equal(got, [[1, 0, 3, 2], [2, 2, 1, 0]])


def test_sorted_negatives_puts_negatives_first():
    d = np.array([[0.0, 4.0, 1.0, 3.0, 2.0]], np.float32)
    negative = np.array([[False, True, False, True, True]])
    keys = mining.sort_keys(d)
    sorted_keys, count = mining.sorted_negatives(keys, negative)
    expected = ops.convert_to_numpy(mining.sort_keys(np.array([2.0, 3.0, 4.0], np.float32)))
    np.testing.assert_array_equal(ops.convert_to_numpy(sorted_keys)[0, :3], expected)
    assert int(ops.convert_to_numpy(count)[0, 0]) == 3
    columns = mining.columns_by_rank(keys, sorted_keys, count, negative)
    np.testing.assert_array_equal(ops.convert_to_numpy(columns)[0, :3], [4, 3, 1])


def test_sorted_negatives_at_the_largest_distance():
    """A negative at the dtype's largest distance, or at inf, still sorts
    before every column that is not a negative."""
    big = np.finfo(np.float32).max
    d = np.array([[0.0, 0.0, big, np.inf]], np.float32)
    negative = np.array([[False, False, True, True]])
    keys = mining.sort_keys(d)
    sorted_keys, count = mining.sorted_negatives(keys, negative)
    columns = mining.columns_by_rank(keys, sorted_keys, count, negative)
    np.testing.assert_array_equal(ops.convert_to_numpy(columns)[0, :2], [2, 3])
    assert int(ops.convert_to_numpy(count)[0, 0]) == 2


def pair_weights(batch, dtype):
    """Fixed, distinct cotangents in [0.5, 1] for every pair."""
    i, j = np.meshgrid(np.arange(batch), np.arange(batch), indexing="ij")
    return (0.5 + 0.125 * ((7 * i + 3 * j) % 5)).astype(S.numpy_dtype(dtype))


def blocked_rows(distance, batch, block_size=2):
    """The weighted distance matrix assembled from row blocks."""

    def fn(embeddings, weights):
        rows = [
            mining.distance_rows(embeddings, start, stop, distance)
            for start, stop in mining.anchor_blocks(batch, block_size)
        ]
        return ops.concatenate(rows, axis=0) * weights

    return fn


@pytest.mark.parametrize("distance", DISTANCES)
def test_distance_rows_in_blocks_equal_the_whole_matrix(distance, dtype, compiled):
    """Rows built two at a time (the last block ragged) have the values of
    `pairwise_distances` and the gradient of the same weighted sum: the
    per-block gradients add up to the whole matrix's."""
    batch = 5
    x = np.random.default_rng(3).standard_normal((batch, 4)).astype(S.numpy_dtype(dtype))
    weights = pair_weights(batch, dtype)

    def whole(embeddings, w):
        return pairwise_distances(embeddings, distance) * w

    value, (grad, _) = value_and_grad(
        blocked_rows(distance, batch), x, weights, compiled=compiled
    )
    expected, (expected_grad, _) = value_and_grad(whole, x, weights, compiled=compiled)
    tolerances.assert_allclose(value, expected, dtype)
    tolerances.assert_allclose(grad, expected_grad, dtype, scale=4.0)


def test_distance_rows_check_their_inputs():
    with pytest.raises(ValueError, match="distance.*manhattan"):
        mining.distance_rows(np.ones((2, 2), np.float32), 0, 1, "manhattan")
    with pytest.raises(ValueError, match="embeddings.*rank 2.*\\(2,\\)"):
        mining.distance_rows(np.ones(2, np.float32), 0, 1)
    with pytest.raises(ValueError, match="embeddings.*floating.*int32"):
        mining.distance_rows(np.ones((2, 2), np.int32), 0, 1)
