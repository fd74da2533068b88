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


def check_floating(x, argument):
    """Raises a ValueError naming `argument` unless `x` is floating-point."""
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

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> a = np.array([[0.0, 0.0], [1.0, 1.0]], "float32")
        >>> b = np.array([[3.0, 4.0], [1.0, 1.0]], "float32")
        >>> np.asarray(safeloss.paired_distances(a, b))
        array([5., 0.], dtype=float32)
    """
    check_distance(distance)
    a = ops.convert_to_tensor(a)
    b = ops.convert_to_tensor(b)
    check_floating(a, "a")
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            "`a` and `b` must have the same shape, received "
            f"{tuple(a.shape)} and {tuple(b.shape)}."
        )
    dtype = safe_ops.dtype_name(a)
    work = safe_ops.compute_dtype(dtype)
    b = ops.cast(b, dtype)
    if distance == "cosine":
        # Normalised in the input dtype's terms (zero rows below its tiny).
        similarity = ops.sum(
            safe_ops.l2_normalize(a, dtype=work)
            * safe_ops.l2_normalize(b, dtype=work),
            axis=-1,
        )
        result = 1.0 - safe_ops.clamp(similarity, -1.0, 1.0)
    else:
        a = ops.cast(a, work)
        b = ops.cast(b, work)
        # The difference of two finite values can overflow to inf in float32
        # and float64 (low precision is in float32 here and cannot): the
        # norm is then beyond the dtype anyway, and `safe_norm` saturates at
        # max with a zero gradient. Clamping the difference first gave the
        # same result at 1.3x the cost of the whole triplet loss on XLA.
        norm = safe_ops.safe_norm(a - b, axis=-1)
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

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> x = np.array([[0.0, 0.0], [3.0, 4.0]], "float32")
        >>> np.asarray(safeloss.pairwise_distances(x))
        array([[0., 5.],
               [5., 0.]], dtype=float32)
    """
    return distance_rows(embeddings, 0, None, distance, matmul_dtype=matmul_dtype)


def distance_rows(
    embeddings, start=0, stop=None, distance="euclidean", *, matmul_dtype=None,
    size=None,
):
    """Rows ``start:stop`` of `pairwise_distances(embeddings, distance)`.

    The formula, guards and accuracy of `pairwise_distances`, evaluated for a
    block of anchor rows against every column, so that a loss can build the
    matrix of a large batch a few rows at a time: the temporaries are
    (block, batch). Summed over blocks that cover the batch, the gradients
    are those of the whole matrix. Public as `safeloss.mining.distance_rows`.

    Args:
        embeddings: floating-point tensor (batch, dim).
        start, stop: the rows; ``stop=None`` means up to the end.
        distance: one of ``"euclidean"``, ``"squared_euclidean"``,
            ``"cosine"``.
        matmul_dtype: as in `pairwise_distances`.
        size: the number of rows, instead of `stop`: required when `start`
            is a tensor (the index of a compiled loop), since the block's
            shape must be static.

    Returns:
        (block, batch) distances in the embeddings' dtype.
    """
    check_distance(distance)
    x = ops.convert_to_tensor(embeddings)
    check_floating(x, "embeddings")
    if len(x.shape) != 2:
        raise ValueError(
            "`embeddings` must have rank 2 (batch, dim), received shape "
            f"{tuple(x.shape)}."
        )
    dtype = safe_ops.dtype_name(x)
    work = safe_ops.compute_dtype(dtype)
    if size is None and not (stop is None and x.shape[0] is None):
        # Both None while the batch is unknown: the block is the batch.
        size = (x.shape[0] if stop is None else stop) - start
    whole = isinstance(start, int) and start == 0 and size == x.shape[0]
    if distance == "cosine":
        # Normalised in the input dtype's terms: rows below its smallest
        # normal number are zero rows, as everywhere in safeloss.
        unit = safe_ops.l2_normalize(x, dtype=work)
        similarity = _gram(take_rows(unit, start, size), unit, matmul_dtype)
        result = 1.0 - safe_ops.clamp(similarity, -1.0, 1.0)
    else:
        x = ops.cast(x, work)
        squared = distance == "squared_euclidean"
        if whole:
            result = _euclidean_matrix(x, squared, dtype, matmul_dtype)
        else:
            result = _euclidean_block(
                take_rows(x, start, size), x, squared, dtype, matmul_dtype
            )
    return safe_ops.saturating_cast(_zero_own_column(result, start), dtype)


def take_rows(x, start, size):
    """``x[start:start + size]`` along the first axis: `start` may be a
    tensor (a loop index), `size` is static (None: to the end)."""
    if isinstance(start, int):
        return x[start:] if size is None else x[start:start + size]
    return ops.slice(x, [start] + [0] * (len(x.shape) - 1), [size, *x.shape[1:]])


def _zero_own_column(rows, start):
    """`rows` with 0 where row ``start + i`` meets column ``start + i``."""
    row_index = ops.arange(ops.shape(rows)[0], dtype="int32") + start
    column_index = ops.arange(ops.shape(rows)[1], dtype="int32")
    own = ops.expand_dims(row_index, 1) == ops.expand_dims(column_index, 0)
    return ops.where(own, ops.zeros_like(rows), rows)


def _euclidean_matrix(x, squared, dtype, matmul_dtype):
    """Euclidean (or squared) distance matrix with a hand-written gradient.

    Autodiff through the per-pair scaling would multiply the cotangent by
    ``m_ij`` (up to the dtype's range) before dividing by the row scale, and
    overflow on its way to a bounded gradient. With ``C`` the cotangent of
    the distances and ``W = C / D`` (``2 C`` for squared distances; 0 for
    pairs at distance 0 or saturated), the gradient is a row and a column
    term,

        dL/dx_i += sum_j W_ij (x_i - x_j),  dL/dx_j += sum_i W_ij (x_j - x_i).

    For the whole matrix ``D`` is symmetric, so the column term is the row
    term of ``C^T``: one term with ``W = (C + C^T) / D``, one product instead
    of two. Each term is evaluated as ``P * (x_i/P * rowsum(W) - W @ (x/P))``
    with ``P`` a global scale, so every intermediate is bounded by the
    gradient itself. The backward pass needs only the embeddings and the
    distances (no batch x batch x dim temporaries).
    """

    @ops.custom_gradient
    def matrix_of(embeddings):
        result = _euclidean_forward(embeddings, embeddings, squared, dtype, matmul_dtype)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            upstream = ops.cast(upstream, embeddings.dtype)
            row_term, _ = _euclidean_backward(
                embeddings, embeddings, result, upstream + ops.transpose(upstream),
                squared, dtype, columns=False,
            )
            return row_term

        return result, grad

    return matrix_of(x)


def _euclidean_block(rows, x, squared, dtype, matmul_dtype):
    """Distances from `rows`, a block of the rows of `x`, to every row of
    `x`, with the gradient of `_euclidean_matrix`: the row term goes to
    `rows` (and from there through the slice into `x`), the column term to
    `x`. The block is an input rather than a start index so that a compiled
    loop can slice it at a traced index: a custom gradient must not close
    over a traced value (JAX rejects the leaked tracer)."""

    @ops.custom_gradient
    def block_of(block, embeddings):
        result = _euclidean_forward(block, embeddings, squared, dtype, matmul_dtype)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return _euclidean_backward(
                block, embeddings, result, ops.cast(upstream, embeddings.dtype),
                squared, dtype, columns=True,
            )

        return result, grad

    return block_of(rows, x)


def _scaled_rows(x, dtype):
    """``(x / s, s, ||x / s||**2)`` per row with ``s = max|x_i|``; the scale
    of a zero row is 0 here (`scale_by_max_abs` divides by 1 there)."""
    scaled, scale, nonzero = safe_ops.scale_by_max_abs(x, -1, safe_ops.tiny(dtype))
    sum_sq = ops.sum(ops.square(scaled), axis=-1, keepdims=True)
    return scaled, ops.where(nonzero, scale, ops.zeros_like(scale)), sum_sq


def _euclidean_forward(rows, x, squared, dtype, matmul_dtype):
    row_scaled, row_scale, row_sum_sq = _scaled_rows(rows, dtype)
    scaled, true_scale, sum_sq = _scaled_rows(x, dtype)
    col_scale = ops.transpose(true_scale)
    pair_scale = ops.where(row_scale >= col_scale, row_scale, col_scale)
    pair_scale = ops.where(pair_scale > 0, pair_scale, ops.ones_like(pair_scale))
    row_ratio = row_scale / pair_scale
    col_ratio = col_scale / pair_scale
    scaled_sq = (
        ops.square(row_ratio) * row_sum_sq
        + ops.square(col_ratio) * ops.transpose(sum_sq)
        - 2.0 * row_ratio * col_ratio * _gram(row_scaled, scaled, matmul_dtype)
    )
    scaled_sq = ops.where(scaled_sq > 0, scaled_sq, ops.zeros_like(scaled_sq))
    if squared:
        return safe_ops.saturating_multiply(
            pair_scale,
            safe_ops.saturating_multiply(pair_scale, scaled_sq, dtype),
            dtype,
        )
    return safe_ops.saturating_multiply(
        pair_scale, safe_ops.safe_sqrt(scaled_sq), dtype
    )


def _euclidean_backward(rows, x, result, upstream, squared, dtype, columns):
    """``(row term, column term)`` of the gradient (`_euclidean_matrix`);
    the column term is None unless `columns`."""
    live = ops.logical_and(result > 0, result < safe_ops.largest(dtype))
    if squared:
        weights = 2.0 * upstream
    else:
        weights = safe_ops.safe_divide(
            upstream, ops.where(live, result, ops.ones_like(result))
        )
    weights = ops.where(live, weights, ops.zeros_like(weights))
    # Both factors are brought into [-4, 4] by global scales, so the sums
    # and products cannot overflow; the scales are applied last, saturating.
    tiny = safe_ops.tiny(dtype)
    unit_weights, weight_scale, _ = safe_ops.scale_by_max_abs(
        ops.reshape(weights, (1, -1)), -1, tiny
    )
    unit_weights = ops.reshape(unit_weights, ops.shape(weights))
    unit_x, x_scale, _ = safe_ops.scale_by_max_abs(ops.reshape(x, (1, -1)), -1, tiny)
    unit_x = ops.reshape(unit_x, ops.shape(x))
    unit_rows = rows / x_scale
    work = safe_ops.dtype_name(x)

    def rescale(term):
        return safe_ops.saturating_cast(
            safe_ops.saturating_cast(term * weight_scale, work) * x_scale, work
        )

    row_term = unit_rows * ops.sum(unit_weights, axis=1, keepdims=True) - ops.einsum(
        "ij,jd->id", unit_weights, unit_x
    )
    if not columns:
        return rescale(row_term), None
    column_term = unit_x * ops.expand_dims(ops.sum(unit_weights, axis=0), 1) - ops.einsum(
        "ij,id->jd", unit_weights, unit_rows
    )
    return rescale(row_term), rescale(column_term)


def _gram(a, b, matmul_dtype):
    """``a @ b.T`` with `einsum`, which keeps float64 on every backend."""
    if matmul_dtype is None:
        return ops.einsum("id,jd->ij", a, b)
    return ops.cast(
        ops.einsum("id,jd->ij", ops.cast(a, matmul_dtype), ops.cast(b, matmul_dtype)),
        a.dtype,
    )
