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


# Mined triplet losses (issue 5), from the definitions in
# safeloss/losses/_mined_triplet.py, by explicit loops over triplets.


def _triplet_term(difference, margin, soft):
    x = difference + margin
    return float(np.logaddexp(0.0, x)) if soft else max(x, 0.0)


def mined_triplet_sums(distances, labels, mining, margin=1.0, soft=False, average="valid"):
    """Per-anchor sums of triplet terms and the batch's count of valid terms.

    `distances` is a float64 (batch, batch) matrix; ties follow the
    definitions (semi-hard: strictly farther than the positive).
    """
    d = as_float64(distances)
    labels = np.asarray(labels).reshape(-1)
    n = len(labels)
    sums, count = np.zeros(n), 0
    for a in range(n):
        positives = [j for j in range(n) if j != a and labels[j] == labels[a]]
        negatives = [j for j in range(n) if labels[j] != labels[a]]
        if not positives or not negatives:
            continue
        if mining == "batch_hard":
            hardest_p = max(d[a, p] for p in positives)
            hardest_n = min(d[a, k] for k in negatives)
            sums[a] = _triplet_term(hardest_p - hardest_n, margin, soft)
            count += 1
        elif mining == "semi_hard":
            for p in positives:
                farther = [d[a, k] for k in negatives if d[a, k] > d[a, p]]
                chosen = min(farther) if farther else max(d[a, k] for k in negatives)
                sums[a] += _triplet_term(d[a, p] - chosen, margin, soft)
                count += 1
        else:
            for p in positives:
                for k in negatives:
                    term = _triplet_term(d[a, p] - d[a, k], margin, soft)
                    sums[a] += term
                    count += 1 if average == "valid" or term > 0 else 0
    return sums, count


def mined_triplet_loss(distances, labels, mining, **kwargs):
    """Per-anchor values ``batch * sum_a / max(count, 1)``: their mean is
    the loss."""
    sums, count = mined_triplet_sums(distances, labels, mining, **kwargs)
    return len(sums) * sums / max(count, 1)

# InfoNCE losses (issue 6): NT-Xent and SupCon, one anchor at a time.


def unit_rows(x, dtype):
    """Rows divided by their norm after flushing; zero rows stay zero."""
    x = flush(x, dtype)
    scale = np.max(np.abs(x), axis=-1, keepdims=True)
    scaled = x / np.where(scale > 0, scale, 1.0)
    length = np.sqrt(np.sum(scaled**2, axis=-1, keepdims=True))
    return np.where(scale > 0, scaled / np.where(scale > 0, length, 1.0), 0.0)


def _log_softmax_of(logits, index, others):
    values = np.array([logits[k] for k in others])
    top = np.max(values)
    return logits[index] - (top + np.log(np.sum(np.exp(values - top))))


def ntxent(views, temperature, dtype):
    """Per-example NT-Xent: the mean of -log softmax(positive) of both views."""
    batch, _, dim = views.shape
    unit = unit_rows(np.asarray(views).reshape(2 * batch, dim), dtype)
    terms = np.zeros(2 * batch)
    for i in range(2 * batch):
        partner = i + 1 if i % 2 == 0 else i - 1
        logits = unit @ unit[i] / temperature
        others = [k for k in range(2 * batch) if k != i]
        terms[i] = -_log_softmax_of(logits, partner, others)
    return terms.reshape(batch, 2).mean(axis=1)


def supcon(labels, x, temperature, dtype):
    """Per-anchor SupCon (L_out): 0 for anchors without positives."""
    unit = unit_rows(x, dtype)
    n = len(labels)
    out = np.zeros(n)
    for i in range(n):
        others = [k for k in range(n) if k != i]
        positives = [k for k in others if labels[k] == labels[i]]
        if positives:
            logits = unit @ unit[i] / temperature
            out[i] = -np.mean([_log_softmax_of(logits, p, others) for p in positives])
    return out


def numerical_gradient(fn, x, step=1e-6):
    """Central differences of sum(fn(x)) in float64."""
    x = as_float64(x)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (np.sum(fn(up)) - np.sum(fn(down))) / (2 * step)
    return grad

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
