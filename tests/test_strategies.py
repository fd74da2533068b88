"""The strategies really produce the edges the properties rely on.

Each test draws a fixed, derandomized sample and checks that the edge cases
occur in it (no shrinking search: these run in every backend's process).
"""

import numpy as np
from hypothesis import HealthCheck, given, settings

from safeloss.ops import finfo
from safeloss.testing import strategies as S


def draws(strategy, count=300):
    seen = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example):
        seen.append(example)

    collect()
    return seen


def _within_range(array, dtype):
    values = np.asarray(array).astype(np.float64)
    return np.all(np.isfinite(values)) and np.all(np.abs(values) <= S.max_magnitude(dtype))


def test_values_are_finite_within_a_tenth_of_the_max(dtype):
    for array in draws(S.floats(dtype, (3, 4)), 100):
        assert array.dtype == S.numpy_dtype(dtype)
        assert _within_range(array, dtype)


def test_values_reach_every_edge(dtype):
    tiny = float(finfo(dtype).tiny)
    big = S.max_magnitude(dtype)
    values = np.array(draws(S.values(dtype), 500))
    assert np.any(values == 0.0)
    assert np.any((values != 0) & (np.abs(values) < tiny))  # subnormals
    assert np.any(np.abs(values) == big)
    assert np.any((np.abs(values) > 1e-3) & (np.abs(values) < 1e3))  # ordinary
    assert np.any(values < 0) and np.any(values > 0)


def test_max_magnitude_is_a_value_of_the_dtype(dtype):
    big = S.max_magnitude(dtype)
    assert float(np.asarray(big).astype(S.numpy_dtype(dtype))) == big
    assert big <= float(finfo(dtype).max) / 10


def _has_duplicate_rows(x):
    return len({row.tobytes() for row in x}) < len(x)


def test_embeddings_produce_structures(dtype):
    batches = [x.astype(np.float64) for x in draws(S.embeddings(dtype, (4, 3)), 150)]
    nonzero = [x for x in batches if np.any(x != 0)]
    assert all(_within_range(x, dtype) for x in batches)
    assert any(_has_duplicate_rows(x) for x in nonzero)
    assert any(np.any(np.all(x == 0, axis=1)) for x in nonzero)
    assert any(np.all(x == x[0]) for x in nonzero)
    row_scales = [np.abs(x).max(axis=1) for x in nonzero]
    assert any(np.ptp(np.log2(s[s > 0])) > 20 for s in row_scales if np.sum(s > 0) > 1)


def test_stacked_embeddings_tie_anchor_and_positive(dtype):
    stacks = draws(S.stacked_embeddings(dtype, 3, (2, 2)), 100)
    assert all(s.shape == (2, 3, 2) for s in stacks)
    assert any(np.all(s[:, 0] == s[:, 1]) and np.any(s[:, 0] != s[:, 2]) for s in stacks)
    assert any(np.all(s == s[:, :1]) and np.any(s != 0) for s in stacks)


def test_labels_cover_one_class_and_all_distinct():
    samples = draws(S.labels(6), 100)
    classes = [len(set(y.tolist())) for y in samples]
    assert all(y.dtype == np.int32 and y.shape == (6,) for y in samples)
    assert 1 in classes and 6 in classes
    assert any(1 < c < 6 for c in classes)


def test_probabilities_include_zero_rows_and_one_hot(dtype):
    samples = [p.astype(np.float64) for p in draws(S.probabilities(dtype, (3, 4)), 120)]
    assert all(np.all(p >= 0) for p in samples)
    assert any(np.any(np.all(p == 0, axis=1)) for p in samples)
    assert any(np.all(p.sum(1) == 1) and np.all((p == 0) | (p == 1)) for p in samples)


def test_shapes_are_drawn_in_range():
    shapes = draws(S.shapes(min_batch=1, max_batch=8, min_dim=1, max_dim=8), 100)
    assert {b for b, _ in shapes} >= {1, 8}
    assert all(1 <= d <= 8 for _, d in shapes)
