"""Triplet mining on a distance matrix, in O(batch**2) memory.

Mining chooses, for each anchor, which positives and negatives a triplet
loss looks at. The choice is not differentiable: every function here works
on values under `stop_gradient` and returns boolean masks, counts or column
indices. A loss then gathers the chosen distances from its (differentiable)
distance matrix, computes them again from the embeddings, or weights every
distance by a count, so gradients flow only through the distances that were
picked, and nothing of the search is kept for the backward pass.

Every function takes a block of anchor rows of the distance matrix
(``rows = distances[start:stop]``, shape (block, batch)) so that a loss can
mine a large batch a few rows at a time (`anchor_blocks`): the temporaries
are (block, batch), never (batch, batch, batch). `distance_rows` (defined in
`safeloss.distances`, with the formula of `pairwise_distances`) builds such a
block of the distance matrix directly from the embeddings, so that the
forward pass never holds the batch x batch temporaries of a whole matrix.

Semi-hard and batch-all mining need, for each anchor-positive pair, how many
negatives lie below a threshold. That is a sort of the anchor's negative
distances (O(batch log batch) per row) followed by a batched binary search
written with `take_along_axis` (``log2(batch)`` gathers of (block, batch)
each). `keras.ops.searchsorted` is 1-D only, and mapping it over rows is
lowered by XLA to a (batch, batch, batch) compare. The sort is of integer
keys (`sort_keys`), values only: on XLA's CPU a one-operand integer sort
runs a native sort (40 ms at 1024 x 1024 on JAX), while a float sort or an
argsort calls a comparator per comparison (210 and 290 ms). Where a column
is needed (semi-hard), it is found back from the ranks (`columns_by_rank`).
"""

import keras
from keras import ops

from safeloss import ops as safe_ops
from safeloss.distances import distance_rows, take_rows
from safeloss.losses._base import is_traced

__all__ = [
    "anchor_blocks",
    "columns_by_rank",
    "count_sorted_below",
    "distance_rows",
    "hardest_columns",
    "label_masks",
    "semi_hard_negative_columns",
    "sort_keys",
    "sorted_negatives",
]

_KEY_DTYPES = {"float16": "int16", "bfloat16": "int16", "float32": "int32", "float64": "int64"}
_LARGEST_INT = {"int16": 2**15 - 1, "int32": 2**31 - 1, "int64": 2**63 - 1}

# Rows per block: about 8M entries, 32 MiB per float32 temporary.
_BLOCK_ENTRIES = 2**23


def anchor_blocks(batch, block_size=None):
    """``[(start, stop), ...]`` row ranges covering `batch` anchors.

    Args:
        batch: the static batch size, or None when it is unknown (a graph
            traced with an unknown batch dimension): one block, the whole
            batch, is returned as ``[(0, None)]``.
        block_size: rows per block; by default as many as keep a block
            under 2**23 entries (1024 rows at batch 8192, the whole batch up
            to 2896).
    """
    if batch is None:
        return [(0, None)]
    if block_size is None:
        block_size = max(1, _BLOCK_ENTRIES // max(batch, 1))
    if block_size < 1:
        raise ValueError(
            f"`block_size` must be a positive integer, received {block_size!r}."
        )
    starts = list(range(0, batch, block_size)) or [0]
    return [(start, min(start + block_size, batch)) for start in starts]


def label_masks(labels, start=0, stop=None, *, size=None):
    """Positive and negative masks for the anchors ``labels[start:stop]``.

    Args:
        labels: int32 tensor (batch,).
        start, stop: the anchor rows of the block.
        size: the number of anchors, instead of `stop`: required when
            `start` is a tensor (the index of a compiled loop).

    Returns:
        ``(positive, negative)``, boolean (block, batch): `positive` where the
        column has the anchor's label and is another sample, `negative` where
        the label differs.
    """
    labels = ops.convert_to_tensor(labels)
    if size is None and stop is not None:
        size = stop - start
    anchors = take_rows(labels, start, size)
    same = ops.expand_dims(anchors, 1) == ops.expand_dims(labels, 0)
    rows = ops.expand_dims(ops.arange(ops.shape(anchors)[0], dtype="int32") + start, 1)
    columns = ops.expand_dims(ops.arange(ops.shape(labels)[0], dtype="int32"), 0)
    positive = ops.logical_and(same, rows != columns)
    return positive, ops.logical_not(same)


def hardest_columns(rows, positive, negative):
    """Per anchor, the column of the farthest positive and the nearest negative.

    Among equal distances the lowest column wins, on every backend.

    Args:
        rows: distances (block, batch); read under `stop_gradient`.
        positive, negative: boolean masks (block, batch).

    Returns:
        ``(positive_column, negative_column)``, int32 (block,). Rows without
        a positive (or negative) return column 0; callers mask them out with
        ``any(positive, axis=1)`` and ``any(negative, axis=1)``.
    """
    rows = ops.stop_gradient(ops.convert_to_tensor(rows))
    big = safe_ops.largest(safe_ops.dtype_name(rows))
    farthest = ops.max(ops.where(positive, rows, ops.full_like(rows, -1.0)), axis=1)
    nearest = ops.min(ops.where(negative, rows, ops.full_like(rows, big)), axis=1)
    return (
        _first_column(ops.logical_and(positive, rows == farthest[:, None])),
        _first_column(ops.logical_and(negative, rows == nearest[:, None])),
    )


def _first_column(mask):
    """The lowest True column of each row of boolean `mask`, int32; 0 on a
    row without one.

    Guard: Keras 3.15's `argmax`/`argmin` on JAX's CPU compute float64 in
    float32: distances beyond float32's range all become inf, distances
    closer than its precision tie, and the first column wins whatever its
    distance. Callers take the extreme with `max`/`min`, which keep the
    dtype, and mark its columns in `mask`; the column is then a minimum of
    integers, so ties go to the lowest column on every backend (TensorFlow
    does not promise which index `argmax` returns on a tie).
    """
    width = ops.shape(mask)[1]
    columns = ops.expand_dims(ops.arange(width, dtype="int32"), 0)
    first = ops.min(ops.where(mask, columns, width), axis=1)
    return ops.where(first < width, first, ops.zeros_like(first))


def sort_keys(values):
    """Integers of the same width that sort and compare like `values`.

    Math: a float's bit pattern, read as a signed integer, increases with
    the value for non-negative floats; for negative ones the magnitude bits
    are negated (``-(bits & max_int)``), so the order holds across signs.
    ``-0.0`` is mapped to ``+0.0`` first so that equal values get equal keys.

    Args:
        values: float16, bfloat16, float32 or float64 tensor without NaN
            (``inf`` is allowed).

    Returns:
        int16, int32 or int64 keys: ``key(a) < key(b)`` exactly when
        ``a < b``.

    Example:
        >>> import numpy as np
        >>> from safeloss import mining
        >>> keys = mining.sort_keys(np.array([-2.0, -0.0, 0.0, 1.5, np.inf], "float32"))
        >>> [int(k) for k in np.asarray(keys)]
        [-1073741824, 0, 0, 1069547520, 2139095040]
    """
    values = ops.convert_to_tensor(values)
    key_dtype = _KEY_DTYPES[safe_ops.dtype_name(values)]
    values = ops.where(values == 0, ops.zeros_like(values), values)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Keras' `view` checks the last dimension in Python and fails on
        # a graph's unknown batch size; the widths are equal here.
        bits = tf.bitcast(values, key_dtype)
    else:
        bits = ops.view(values, key_dtype)
    magnitude = ops.bitwise_and(bits, _LARGEST_INT[key_dtype])
    return ops.where(bits < 0, -magnitude, bits)


def sorted_negatives(keys, negative):
    """Each anchor's negative keys in ascending order.

    Args:
        keys: integer keys of the distances (block, batch), from `sort_keys`.
        negative: boolean mask (block, batch).

    Returns:
        ``(sorted_keys, count)``: `sorted_keys` (block, batch) holds the
        negatives' keys in ascending order, then the largest integer for the
        other columns (above the key of ``+inf``, so a negative at any
        distance sorts first); `count` (block, 1) int32 is the number of
        negatives. Only the first `count` entries of a row are meaningful.
    """
    keys = ops.stop_gradient(ops.convert_to_tensor(keys))
    sentinel = ops.full_like(keys, _LARGEST_INT[safe_ops.dtype_name(keys)])
    count = ops.sum(ops.cast(negative, "int32"), axis=1, keepdims=True)
    return _sort_rows(ops.where(negative, keys, sentinel)), count


def _sort_rows(keys):
    """`keys` sorted along their last axis (values only).

    Inside XLA on TensorFlow (``jit_compile``), `tf.sort` is a top-k, a
    two-operand sort with a comparator call per comparison (183 ms at
    1024 x 1024 int32 on the CPU); XLA's own one-operand sort runs a
    native integer sort (47 ms). Elsewhere `keras.ops.sort`.
    """
    if keras.backend.backend() == "tensorflow":
        try:  # private TensorFlow modules (checked with 2.21)
            from tensorflow.compiler.tf2xla.python import xla
            from tensorflow.python.framework import ops as tf_ops
            from tensorflow.python.ops import control_flow_util
        except ImportError:
            return ops.sort(keys, axis=-1)
        if control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph()):
            return xla.sort(keys)
    return ops.sort(keys, axis=-1)


def columns_by_rank(keys, sorted_keys, count, negative):
    """The column of each rank of `sorted_negatives`: the inverse of the sort.

    A negative's rank is the number of negative keys below its own
    (`count_sorted_below`, strict), so equal keys share the rank of the
    first of them; that entry gets the lowest of their columns, the order
    a stable argsort would give. The other entries of a run of equal keys
    are not filled: callers read only the first entry of a run.

    Args:
        keys, sorted_keys, count, negative: as for `sorted_negatives`.

    Returns:
        int32 (block, batch): at rank r, a column whose key is the r-th
        smallest negative key; a column in ``[0, batch)`` everywhere.
    """
    keys = ops.stop_gradient(ops.convert_to_tensor(keys))
    block, width = ops.shape(keys)[0], ops.shape(keys)[1]
    rank = count_sorted_below(sorted_keys, count, keys, strict=True)
    cells = block * width
    rows = ops.expand_dims(ops.arange(block, dtype="int32"), 1)
    columns = ops.expand_dims(ops.arange(width, dtype="int32"), 0)
    # One segment per (row, rank) cell, the other columns in an extra one.
    # Segment maximum of minus the column (float32: PyTorch's segment
    # reduction returns floats) is the lowest column of the cell.
    segment = ops.where(negative, rows * width + rank, cells)
    lowest = ops.segment_max(
        ops.reshape(ops.cast(-ops.broadcast_to(columns, ops.shape(keys)), "float32"), (-1,)),
        ops.reshape(segment, (-1,)),
        num_segments=cells + 1,
    )[:cells]
    lowest = ops.reshape(-lowest, ops.shape(keys))
    filled = ops.logical_and(lowest >= 0, lowest < ops.cast(width, "float32"))
    return ops.where(filled, ops.cast(ops.where(filled, lowest, 0.0), "int32"), 0)


def count_sorted_below(sorted_keys, count, queries, strict):
    """How many of the first `count` keys of a row lie below each query.

    A batched binary search: ``ceil(log2(width + 1))`` rounds of one
    `take_along_axis` each (on PyTorch, `torch.searchsorted`), O(block *
    width) memory and O(block * width * log(width)) time.

    Args:
        sorted_keys: (block, width), ascending within the first `count`
            entries of each row.
        count: int32 (block, 1), the searched prefix of each row.
        queries: (block, n) values to look up, same dtype as the keys
            (integer keys from `sort_keys` in the losses).
        strict: count keys ``< query`` if True, ``<= query`` if False.

    Returns:
        int32 (block, n), in ``[0, count]``.
    """
    sorted_keys = ops.stop_gradient(ops.convert_to_tensor(sorted_keys))
    queries = ops.stop_gradient(ops.convert_to_tensor(queries))
    if keras.backend.backend() == "torch":
        return _torch_count_sorted_below(sorted_keys, count, queries, strict)
    width = sorted_keys.shape[1]
    steps = 32 if width is None else max(int(width), 1).bit_length()
    last = ops.shape(sorted_keys)[1] - 1
    low = ops.zeros(ops.shape(queries), "int32")
    high = ops.broadcast_to(ops.cast(count, "int32"), ops.shape(queries))

    def halve(_, bounds):
        low, high = bounds
        middle = (low + high) // 2
        probe = ops.take_along_axis(
            sorted_keys, ops.clip(middle, 0, ops.maximum(last, 0)), axis=1
        )
        below = probe < queries if strict else probe <= queries
        open_range = low < high
        go_up = ops.logical_and(open_range, below)
        go_down = ops.logical_and(open_range, ops.logical_not(below))
        return ops.where(go_up, middle + 1, low), ops.where(go_down, middle, high)

    bounds = (low, high)
    if is_traced(sorted_keys):
        # A loop, not unrolled rounds: XLA fuses unrolled rounds into one
        # another and recomputes the earlier rounds' bounds (286 ms instead
        # of 54 ms at 1024 x 1024 on JAX's CPU).
        return ops.fori_loop(0, steps, halve, bounds)[0]
    # Eager, a Python loop: JAX would trace and compile a new `fori_loop`
    # body on every call.
    for step in range(steps):
        bounds = halve(step, bounds)
    return bounds[0]


def _torch_count_sorted_below(sorted_keys, count, queries, strict):
    """`count_sorted_below` with PyTorch's batched `searchsorted` (the
    rounds of gathers took 1.5 s at 1024 x 1024 eagerly, this 0.2 s)."""
    import torch

    count = ops.convert_to_tensor(count)
    width = sorted_keys.shape[1]
    columns = torch.arange(width, device=sorted_keys.device)[None, :]
    if sorted_keys.dtype.is_floating_point:
        ceiling = torch.tensor(float("inf"), dtype=sorted_keys.dtype, device=sorted_keys.device)
    else:
        ceiling = torch.tensor(torch.iinfo(sorted_keys.dtype).max, dtype=sorted_keys.dtype,
                               device=sorted_keys.device)
    # Past `count` the keys are ignored: the ceiling keeps each row sorted,
    # and the minimum with `count` drops a query equal to it.
    keys = torch.where(columns < count, sorted_keys, ceiling).contiguous()
    found = torch.searchsorted(keys, queries.contiguous(), right=not strict)
    return torch.minimum(found, count.to(found.dtype)).to(torch.int32)


def semi_hard_negative_columns(rows, positive, negative):
    """The semi-hard negative of every anchor-column pair (FaceNet, TFA).

    For anchor a and column j: the negative with the smallest distance
    strictly greater than ``d(a, j)``; where no negative is farther than
    ``d(a, j)``, the farthest negative (TensorFlow Addons'
    `triplet_semihard_loss`). Among negatives at equal distances the lowest
    column is chosen.

    Args:
        rows: distances (block, batch); read under `stop_gradient`.
        positive: boolean mask (block, batch); unused by the search, kept so
            every mining function takes the same arguments.
        negative: boolean mask (block, batch).

    Returns:
        int32 (block, batch): a column index per pair. Meaningful where the
        anchor has a negative (``any(negative, axis=1)``).
    """
    del positive
    keys = sort_keys(ops.stop_gradient(ops.convert_to_tensor(rows)))
    sorted_keys, count = sorted_negatives(keys, negative)
    columns = columns_by_rank(keys, sorted_keys, count, negative)
    not_farther = count_sorted_below(sorted_keys, count, keys, strict=False)
    # The farthest negatives' run starts at the rank of the largest key.
    largest = ops.take_along_axis(sorted_keys, ops.maximum(count - 1, 0), axis=1)
    farthest = count_sorted_below(sorted_keys, count, largest, strict=True)
    rank = ops.where(not_farther < count, not_farther, farthest)
    return ops.take_along_axis(columns, rank, axis=1)
