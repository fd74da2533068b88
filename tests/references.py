"""Float64 brute-force references, written from the definitions.

They take the inputs already rounded to the tested dtype and follow the
documented conventions at the guarded edges (values below the dtype's
smallest normal count as 0), so a difference is an error of safeloss.
"""

import math

import numpy as np

from safeloss.ops import finfo


def as_float64(x):
    return np.asarray(x).astype(np.float64)


def flush(x, dtype):
    """Values below the dtype's smallest normal set to 0."""
    x = as_float64(x)
    return np.where(np.abs(x) < float(finfo(dtype).tiny), 0.0, x)


def sqrt(x, dtype):
    x = as_float64(x)
    return np.where(x >= float(finfo(dtype).tiny), np.sqrt(np.abs(x)), 0.0)


def log(x, dtype):
    tiny = float(finfo(dtype).tiny)
    return np.log(np.maximum(as_float64(x), tiny))


def divide(a, b, dtype):
    a, b = as_float64(a), as_float64(b)
    big = float(finfo(dtype).max)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        q = np.where(np.abs(b) >= float(finfo(dtype).tiny), a / np.where(b == 0, 1, b), 0.0)
    return np.clip(q, -big, big)


def norm(x, dtype, axis=-1):
    """Scaled two-norm, exact in float64 for any finite input."""
    x = flush(x, dtype)
    scale = np.max(np.abs(x), axis=axis, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    result = (safe * np.sqrt(np.sum((x / safe) ** 2, axis=axis, keepdims=True)))
    result = np.where(scale > 0, result, 0.0)
    return np.minimum(np.squeeze(result, axis=axis), float(finfo(dtype).max))


def softplus(x):
    return np.logaddexp(0.0, as_float64(x))


def logsumexp(x, axis=-1, mask=None):
    x = as_float64(x)
    valid = np.isfinite(x) if mask is None else (np.isfinite(x) & mask)
    m = np.max(np.where(valid, x, -np.inf), axis=axis, keepdims=True)
    has = np.any(valid, axis=axis, keepdims=True)
    m = np.where(has, m, 0.0)
    total = np.sum(np.where(valid, np.exp(np.where(valid, x, m) - m), 0.0), axis=axis, keepdims=True)
    out = np.where(has, np.log(np.where(has, total, 1.0)) + m, 0.0)
    return np.squeeze(out, axis=axis)


def pair_distance(a, b, distance, dtype):
    """One distance between two rows, by its definition."""
    a, b = flush(a, dtype), flush(b, dtype)
    if distance == "cosine":
        na, nb = norm(a, dtype), norm(b, dtype)
        if na == 0 or nb == 0:
            return 1.0
        similarity = float(np.sum((a / na) * (b / nb)))
        return 1.0 - min(max(similarity, -1.0), 1.0)
    d = float(norm(a - b, "float64"))
    if distance == "euclidean":
        return d
    return min(d * d, float(finfo(dtype).max))


def pairwise(x, distance, dtype):
    n = x.shape[0]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = pair_distance(x[i], x[j], distance, dtype)
    return out


def power_of_two_scale(*arrays):
    """An exact power of two near the largest magnitude (1 for zeros)."""
    largest = max(float(np.max(np.abs(as_float64(a)), initial=0.0)) for a in arrays)
    if largest == 0 or not math.isfinite(largest):
        return 1.0
    return 2.0 ** min(math.frexp(largest)[1], 1000)


def _clip_to(x, dtype):
    return np.minimum(x, float(finfo(dtype).max))


def triplet(anchor, positive, negative, margin, distance, soft, dtype):
    """Per-triplet loss, with the distances of the definition, in float64.

    Squared distances enter as ``(x - y)(x + y)``, the same real number as
    ``x**2 - y**2``, so that float64 inputs near their range give +-inf
    (then clipped) rather than ``inf - inf``.
    """
    out = []
    for a, p, n in zip(anchor, positive, negative):
        if distance == "squared_euclidean":
            x = pair_distance(a, p, "euclidean", dtype)
            y = pair_distance(a, n, "euclidean", dtype)
            with np.errstate(over="ignore"):
                gap = (x - y) * (x + y)
        else:
            gap = pair_distance(a, p, distance, dtype) - pair_distance(a, n, distance, dtype)
        violation = gap + margin
        out.append(softplus(violation) if soft else max(violation, 0.0))
    return _clip_to(np.asarray(out, np.float64), dtype)


def contrastive(similar, distances, margin, dtype):
    """Per-pair contrastive loss ``y d**2 + (1 - y) max(margin - d, 0)**2``."""
    y = as_float64(similar)
    d = flush(distances, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        pull = np.where(y > 0, y * d * d, 0.0)
        push = np.where(y < 1, (1 - y) * np.maximum(margin - d, 0.0) ** 2, 0.0)
        return _clip_to(pull + push, dtype)
