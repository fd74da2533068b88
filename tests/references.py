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


# --- cross-entropy (safeloss.losses._crossentropy) --------------------------


def log_probabilities(y_pred, from_logits, dtype):
    """Float64 log-probabilities along the last axis, with the documented
    conventions: logits clipped to a quarter of the dtype's largest
    value; negative scores count as 0, rows summing below tiny are uniform,
    logarithms floored at tiny."""
    x = as_float64(y_pred)
    if from_logits:
        bound = float(finfo(dtype).max) / 4
        x = np.clip(x, -bound, bound)
        m = np.max(x, axis=-1, keepdims=True)
        return x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))
    tiny = float(finfo(dtype).tiny)
    p = np.maximum(x, 0.0)
    scale = np.max(p, axis=-1, keepdims=True)
    safe_scale = np.where(scale > 0, scale, 1.0)
    log_total = np.log(safe_scale) + np.log(
        np.maximum(np.sum(p / safe_scale, axis=-1, keepdims=True), tiny)
    )
    below_tiny = np.sum(p / safe_scale, axis=-1, keepdims=True) * safe_scale < tiny
    log_p = np.log(np.maximum(p, tiny)) - log_total
    return np.where(below_tiny, -np.log(x.shape[-1]), log_p)


def categorical_crossentropy(y_true, y_pred, from_logits, dtype, gamma=None, alpha=1.0):
    """Per-sample (focal, when gamma is given) categorical cross-entropy."""
    log_p = log_probabilities(y_pred, from_logits, dtype)
    terms = -as_float64(y_true) * log_p
    if gamma is not None:
        rest = np.maximum(-np.expm1(log_p), float(finfo(dtype).tiny))
        terms = alpha * rest**gamma * terms
    return np.sum(terms, axis=-1)


def binary_log_probabilities(y_pred, from_logits, dtype):
    """Float64 ``(log p, log(1 - p))`` with the documented conventions."""
    x = as_float64(y_pred)
    if from_logits:
        bound = float(finfo(dtype).max) / 4
        x = np.clip(x, -bound, bound)
        return -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x)
    tiny = float(finfo(dtype).tiny)
    p = np.clip(x, 0.0, 1.0)
    return np.log(np.maximum(p, tiny)), np.log(np.maximum(1.0 - p, tiny))


def binary_crossentropy(y_true, y_pred, from_logits, dtype, gamma=None):
    """Per-sample mean over the last axis of the (focal) binary cross-entropy."""
    y = as_float64(y_true)
    log_p, log_q = binary_log_probabilities(y_pred, from_logits, dtype)
    terms = -(y * log_p + (1.0 - y) * log_q)
    if gamma is not None:
        rest = y * np.exp(log_q) + (1.0 - y) * np.exp(log_p)
        terms = np.maximum(rest, float(finfo(dtype).tiny)) ** gamma * terms
    return np.mean(terms, axis=-1)
