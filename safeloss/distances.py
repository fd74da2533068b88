"""Distances between embeddings, safe at zero and safe from overflow.

Two shapes of question: `paired_distances` compares row i of one batch with
row i of another (a triplet's anchor and positive); `pairwise_distances`
compares every row of a batch with every other row (mining losses), in
O(batch**2) memory through a Gram matrix, never a (batch, batch, dim)
broadcast.

Supported distances:

* ``"euclidean"``: ``||a - b||``;
* ``"squared_euclidean"``: ``||a - b||**2``, saturating at the dtype's
  largest value instead of overflowing;
* ``"cosine"``: ``1 - a.b / (||a|| ||b||)`` in ``[0, 2]``; a zero vector has
  cosine similarity 0 with everything (distance 1), except itself (0).
"""

from keras import ops

from safeloss import ops as safe_ops

__all__ = ["DISTANCES", "paired_distances", "pairwise_distances"]

DISTANCES = ("euclidean", "squared_euclidean", "cosine")


def check_distance(distance, argument="distance"):
    """Raises a ValueError unless `distance` is one of `DISTANCES`."""
    if distance not in DISTANCES:
        raise ValueError(
            f"Invalid `{argument}`: expected one of {DISTANCES}, "
            f"received {distance!r}."
        )


def _check_floating(x, argument):
    dtype = safe_ops.dtype_name(x)
    if not dtype.startswith(("float", "bfloat")):
        raise ValueError(
            f"`{argument}` must be a floating-point tensor, "
            f"received dtype={dtype}."
        )


def paired_distances(a, b, distance="euclidean"):
    """Distance between row i of `a` and row i of `b`, along the last axis.

    Math: see the module docstring. Euclidean distances use `safe_norm` on
    the difference (scaled by its largest entry), so they are exact and have
    a finite gradient of magnitude at most 1, also where ``a == b``.

    Args:
        a: floating-point tensor (..., dim).
        b: floating-point tensor of the same shape.
        distance: one of ``"euclidean"``, ``"squared_euclidean"``,
            ``"cosine"``.

    Returns:
        A tensor (...) in the inputs' dtype.
    """
    check_distance(distance)
    a = ops.convert_to_tensor(a)
    b = ops.convert_to_tensor(b)
    _check_floating(a, "a")
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            "`a` and `b` must have the same shape, received "
            f"{tuple(a.shape)} and {tuple(b.shape)}."
        )
    dtype = safe_ops.dtype_name(a)
    work = safe_ops.compute_dtype(dtype)
    a = ops.cast(a, work)
    b = ops.cast(ops.cast(b, dtype), work)
    if distance == "cosine":
        similarity = ops.sum(
            safe_ops.l2_normalize(a) * safe_ops.l2_normalize(b), axis=-1
        )
        result = 1.0 - safe_ops.clamp(similarity, -1.0, 1.0)
    else:
        # The difference of two finite values can overflow in its own dtype;
        # low precision is already in float32 here, and for float32/64 the
        # difference saturates (its gradient is then 0, never NaN).
        diff = safe_ops.saturating_cast(a - b, work)
        norm = safe_ops.safe_norm(diff, axis=-1)
        if distance == "euclidean":
            result = norm
        else:
            result = safe_ops.saturating_multiply(norm, norm, dtype)
    return safe_ops.saturating_cast(result, dtype)


def pairwise_distances(embeddings, distance="euclidean", *, matmul_dtype=None):
    """All distances between the rows of `embeddings`: a (batch, batch) matrix.

    Math: ``d_ij**2 = ||x_i||**2 + ||x_j||**2 - 2 x_i.x_j`` from one Gram
    matrix (O(batch**2) memory), evaluated in units of
    ``m_ij = max(s_i, s_j)`` where ``s_i = max|x_i|``:
    ``d_ij = m_ij * sqrt(r_i**2 n_i + r_j**2 n_j - 2 r_i r_j g_ij)`` with
    ``r_i = s_i / m_ij``, ``n_i = ||x_i / s_i||**2`` and
    ``g_ij = (x_i / s_i).(x_j / s_j)``. Every term is at most ``dim``, so no
    intermediate overflows or loses its leading digits to underflow, for any
    finite input.

    Guards: negative round-off is clamped to 0; the diagonal is exactly 0;
    the square root is `safe_sqrt`, so duplicate and zero rows have a finite
    gradient (0, a subgradient); squared distances beyond the dtype saturate
    at its largest value (never inf, so never ``inf - inf`` downstream). The
    scales are under `stop_gradient`; the distance does not depend on them, so
    gradients are exact.

    Accuracy: a Gram matrix cancels digits for near-duplicate rows: the
    error of ``d**2`` is about ``u * (||x_i||**2 + ||x_j||**2)`` with ``u`` the
    unit round-off, so the relative error of small distances is large (9% at
    d = 1e-3 for unit-norm rows in float32). Use `paired_distances` when
    small distances must be exact.

    Args:
        embeddings: floating-point tensor (batch, dim).
        distance: one of ``"euclidean"``, ``"squared_euclidean"``,
            ``"cosine"``.
        matmul_dtype: optional dtype for the Gram matrix product alone, for
            example ``"bfloat16"`` to emulate the reduced-precision (TF32)
            matrix products that GPUs use for float32 by default. Inputs to
            the product are scaled into ``[-1, 1]`` first, so any float dtype
            is safe here.

    Returns:
        A (batch, batch) tensor in the embeddings' dtype. float64 stays
        float64 on every backend.
    """
    check_distance(distance)
    x = ops.convert_to_tensor(embeddings)
    _check_floating(x, "embeddings")
    if len(x.shape) != 2:
        raise ValueError(
            "`embeddings` must have rank 2 (batch, dim), received shape "
            f"{tuple(x.shape)}."
        )
    dtype = safe_ops.dtype_name(x)
    x = ops.cast(x, safe_ops.compute_dtype(dtype))
    work = safe_ops.dtype_name(x)
    scaled, scale, nonzero = safe_ops.scale_by_max_abs(
        x, -1, safe_ops.tiny(dtype)
    )
    sum_sq = ops.sum(ops.square(scaled), axis=-1, keepdims=True)
    if distance == "cosine":
        sum_sq = ops.where(nonzero, sum_sq, ops.ones_like(sum_sq))
        unit = ops.where(nonzero, scaled / ops.sqrt(sum_sq), ops.zeros_like(x))
        similarity = safe_ops.clamp(_gram(unit, matmul_dtype), -1.0, 1.0)
        result = 1.0 - similarity
    else:
        # `scale` is 1 for zero rows; their true scale, 0, is what m_ij needs.
        row_scale = ops.where(nonzero, scale, ops.zeros_like(scale))
        col_scale = ops.transpose(row_scale)
        pair_scale = ops.where(row_scale >= col_scale, row_scale, col_scale)
        pair_scale = ops.where(
            pair_scale > 0, pair_scale, ops.ones_like(pair_scale)
        )
        row_ratio = row_scale / pair_scale
        col_ratio = col_scale / pair_scale
        scaled_sq = (
            ops.square(row_ratio) * sum_sq
            + ops.square(col_ratio) * ops.transpose(sum_sq)
            - 2.0 * row_ratio * col_ratio * _gram(scaled, matmul_dtype)
        )
        scaled_sq = ops.where(scaled_sq > 0, scaled_sq, ops.zeros_like(scaled_sq))
        if distance == "euclidean":
            result = safe_ops.saturating_multiply(
                pair_scale, safe_ops.safe_sqrt(scaled_sq), dtype
            )
        else:
            result = safe_ops.saturating_multiply(
                pair_scale, safe_ops.saturating_multiply(pair_scale, scaled_sq, dtype), dtype
            )
    diagonal = ops.eye(ops.shape(x)[0], dtype="bool")
    result = ops.where(diagonal, ops.zeros_like(result), result)
    return safe_ops.saturating_cast(ops.cast(result, work), dtype)


def _gram(x, matmul_dtype):
    """``x @ x.T`` with `einsum`, which keeps float64 on every backend."""
    if matmul_dtype is None:
        return ops.einsum("id,jd->ij", x, x)
    low = ops.cast(x, matmul_dtype)
    return ops.cast(ops.einsum("id,jd->ij", low, low), x.dtype)
