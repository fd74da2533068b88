"""Hypothesis strategies for the inputs that break naive losses.

Every strategy draws NumPy arrays in one of `DTYPES`. Values come from a mix
of explicit edges (0, -0, subnormals, the smallest normal, 1, a tenth of the
largest value), log-uniform magnitudes over the whole range of the dtype,
and ordinary floats. Array strategies add structure: duplicated rows, zero
rows, a whole batch collapsed onto one row, rows of wildly different scales.

bfloat16 has no hypothesis support: values are drawn as float32 and rounded
through `ml_dtypes`.

Requires hypothesis (the ``test`` and ``audit`` extras).
"""

import math

import ml_dtypes
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from safeloss.ops import finfo

__all__ = [
    "DTYPES",
    "edge_values",
    "embeddings",
    "floats",
    "labels",
    "logits",
    "max_magnitude",
    "numpy_dtype",
    "probabilities",
    "shapes",
    "stacked_embeddings",
    "values",
]

DTYPES = ("float16", "bfloat16", "float32", "float64")

_WIDTH = {"float16": 16, "bfloat16": 32, "float32": 32, "float64": 64}


def numpy_dtype(dtype):
    """The NumPy dtype for a Keras dtype name (ml_dtypes for bfloat16)."""
    if dtype == "bfloat16":
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def max_magnitude(dtype):
    """The largest magnitude drawn: a tenth of the dtype's largest value,
    rounded down to a value of the dtype."""
    target = float(finfo(dtype).max) / 10
    value = np.asarray(target).astype(numpy_dtype(dtype))
    if float(value) > target:
        value = np.nextafter(value, np.asarray(0, value.dtype))
    return float(value)


def _cast(value, dtype):
    """`value` in `dtype`, rounded, and kept within `max_magnitude`."""
    big = max_magnitude(dtype)
    return np.clip(np.asarray(value, np.float64), -big, big).astype(
        numpy_dtype(dtype)
    )


def edge_values(dtype):
    """The values where guards sit, each with both signs, in `dtype`."""
    info = finfo(dtype)
    magnitudes = [
        0.0,
        float(info.smallest_subnormal),
        float(info.tiny),
        float(info.tiny) * 8,
        float(info.eps),
        1.0,
        math.sqrt(float(info.max)),
        max_magnitude(dtype),
    ]
    edges = sorted({m for m in magnitudes} | {-m for m in magnitudes})
    return [_cast(v, dtype).item() for v in edges]


def _log_uniform(dtype):
    info = finfo(dtype)
    low = math.log10(float(info.smallest_subnormal))
    high = math.log10(max_magnitude(dtype))
    return st.builds(
        lambda sign, exponent: sign * 10.0**exponent,
        st.sampled_from([-1.0, 1.0]),
        st.floats(low, high),
    )


def values(dtype, max_value=None):
    """Single finite floats of `dtype`, as Python floats, edges included.

    Args:
        dtype: one of `DTYPES`.
        max_value: optional bound on the magnitude (default: a tenth of the
            dtype's largest value).
    """
    big = max_magnitude(dtype) if max_value is None else max_value
    ordinary = st.floats(
        -big, big, allow_nan=False, allow_infinity=False, width=_WIDTH[dtype]
    )
    mixed = st.one_of(
        st.sampled_from(edge_values(dtype)),
        _log_uniform(dtype),
        ordinary,
        st.floats(-10.0, 10.0, width=_WIDTH[dtype]),
    )
    return mixed.map(lambda v: _cast(np.clip(v, -big, big), dtype).item())


def floats(dtype, shape, max_value=None):
    """Arrays of `shape` in `dtype` with elements from `values`."""
    elements = values(dtype, max_value)
    return hnp.arrays(np.float64, shape, elements=elements).map(
        lambda a: _cast(a, dtype)
    )


def shapes(min_batch=1, max_batch=8, min_dim=1, max_dim=8):
    """(batch, dim) pairs."""
    return st.tuples(
        st.integers(min_batch, max_batch), st.integers(min_dim, max_dim)
    )


@st.composite
def embeddings(draw, dtype, shape=None, max_value=None):
    """A (batch, dim) batch of embeddings with the structures that hurt.

    On top of elementwise extremes, it may duplicate rows, zero rows,
    collapse the whole batch onto one row, and rescale rows to magnitudes
    from subnormal to a tenth of the largest value.
    """
    batch, dim = draw(shapes()) if shape is None else shape
    base = draw(floats(dtype, (batch, dim), max_value)).astype(np.float64)
    structure = draw(
        st.sampled_from(["plain", "duplicates", "zeros", "collapsed", "scales"])
    )
    if structure == "duplicates" and batch > 1:
        pairs = draw(
            st.lists(
                st.tuples(st.integers(0, batch - 1), st.integers(0, batch - 1)),
                min_size=1,
                max_size=batch,
            )
        )
        for source, target in pairs:
            base[target] = base[source]
    elif structure == "zeros":
        rows = draw(st.lists(st.integers(0, batch - 1), min_size=1))
        base[rows] = 0.0
    elif structure == "collapsed":
        base[:] = base[draw(st.integers(0, batch - 1))]
    elif structure == "scales":
        unit = draw(floats(dtype, (batch, dim), max_value=1.0)).astype(
            np.float64
        )
        row_scales = draw(
            st.lists(
                st.sampled_from([abs(v) for v in edge_values(dtype)]),
                min_size=batch,
                max_size=batch,
            )
        )
        base = unit * np.asarray(row_scales)[:, None]
    return _cast(base, dtype)


@st.composite
def stacked_embeddings(draw, dtype, count, shape=None, max_value=None):
    """(batch, count, dim) stacks, e.g. anchor/positive/negative triplets.

    Members of a stack are often equal (anchor == positive, all three
    identical), the case in which a hand-written Euclidean distance has an
    infinite gradient.
    """
    batch, dim = draw(shapes()) if shape is None else shape
    rows = draw(embeddings(dtype, (batch * count, dim), max_value))
    stack = rows.reshape(batch, count, dim).astype(np.float64)
    tie = draw(st.sampled_from(["none", "first_two", "all"]))
    if tie == "first_two":
        stack[:, 1] = stack[:, 0]
    elif tie == "all":
        stack[:] = stack[:, :1]
    return _cast(stack, dtype)


@st.composite
def labels(draw, batch, num_classes=None):
    """Integer labels (batch,): one class, all distinct, or a mix."""
    kind = draw(st.sampled_from(["single", "distinct", "mixed"]))
    if kind == "single":
        return np.zeros(batch, np.int32)
    if kind == "distinct":
        return np.arange(batch, dtype=np.int32)
    classes = num_classes or max(1, batch // 2)
    return np.asarray(
        draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)),
        np.int32,
    )


def logits(dtype, shape):
    """Logits with extremes: the full finite range of `values`."""
    return floats(dtype, shape)


@st.composite
def probabilities(draw, dtype, shape):
    """Non-negative scores that need not sum to 1: zero rows, exact 0 and 1,
    ReLU-like outputs, and normalised rows."""
    raw = np.abs(draw(floats(dtype, shape)).astype(np.float64))
    kind = draw(st.sampled_from(["raw", "normalised", "zero_rows", "one_hot"]))
    if kind == "normalised":
        raw = raw / np.maximum(raw.sum(-1, keepdims=True), 1e-300)
    elif kind == "zero_rows":
        raw[draw(st.integers(0, shape[0] - 1))] = 0.0
    elif kind == "one_hot":
        raw = np.eye(shape[-1])[
            draw(st.lists(st.integers(0, shape[-1] - 1), min_size=shape[0], max_size=shape[0]))
        ]
    return _cast(raw, dtype)


@st.composite
def class_targets(draw, dtype, shape):
    """(batch, classes) targets: one-hot rows, soft rows summing to 1, or a
    mix with all-zero rows (samples that contribute nothing)."""
    batch, classes = shape
    picks = draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch))
    one_hot = np.eye(classes)[picks]
    kind = draw(st.sampled_from(["one_hot", "soft", "zero_rows"]))
    if kind == "soft":
        weights = draw(
            hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0))
        ) + one_hot
        one_hot = weights / weights.sum(-1, keepdims=True)
    elif kind == "zero_rows":
        one_hot[draw(st.integers(0, batch - 1))] = 0.0
    return one_hot.astype(numpy_dtype(dtype))


def binary_targets(dtype, shape):
    """Binary targets of `shape`: mostly exact 0 and 1, some soft values."""
    element = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
    return hnp.arrays(np.float64, shape, elements=element).map(
        lambda a: a.astype(numpy_dtype(dtype))
    )

__all__ += ["binary_targets", "class_targets"]
