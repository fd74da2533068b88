"""Triplet mining on a distance matrix, in O(batch**2) memory.

Mining chooses, for each anchor, which positives and negatives a triplet
loss looks at. The choice is not differentiable: every function here works
on values under `stop_gradient` and returns boolean masks, counts or column
indices. A loss then gathers the chosen distances from its (differentiable)
distance matrix, so gradients flow only through the distances that were
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
distances (one stable argsort per row, O(batch log batch)) followed by a
batched binary search written with `take_along_axis` (``log2(batch)``
gathers of (block, batch) each). `keras.ops.searchsorted` is 1-D only, and
mapping it over rows is lowered by XLA to a (batch, batch, batch) compare.
"""

from keras import ops

from safeloss import ops as safe_ops
from safeloss.distances import distance_rows, take_rows

__all__ = [
    "anchor_blocks",
    "count_sorted_below",
    "distance_rows",
    "hardest_columns",
    "label_masks",
    "semi_hard_negative_columns",
    "sorted_negatives",
]

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


def sorted_negatives(rows, negative):
    """Each anchor's negative distances in ascending order.

    Args:
        rows: distances (block, batch); read under `stop_gradient`.
        negative: boolean mask (block, batch).

    Returns:
        ``(order, sorted_keys, count)``: `order` (block, batch) int32 are the
        columns by ascending key, negatives first; `sorted_keys` the keys in
        that order (the distance for a negative, +inf elsewhere); `count`
        (block, 1) int32 the number of negatives. Only the first `count`
        entries of a row are meaningful.
    """
    rows = ops.stop_gradient(ops.convert_to_tensor(rows))
    # +inf, not the dtype's largest value: a negative at a saturated
    # distance would tie with that and sort after lower non-negative
    # columns. The keys are only sorted and compared, never combined.
    keys = ops.where(negative, rows, ops.full_like(rows, float("inf")))
    order = ops.cast(ops.argsort(keys, axis=1), "int32")
    count = ops.sum(ops.cast(negative, "int32"), axis=1, keepdims=True)
    return order, ops.take_along_axis(keys, order, axis=1), count


def count_sorted_below(sorted_keys, count, queries, strict):
    """How many of the first `count` keys of a row lie below each query.

    A batched binary search: ``ceil(log2(width + 1))`` rounds of one
    `take_along_axis` each, O(block * width) memory and
    O(block * width * log(width)) time.

    Args:
        sorted_keys: (block, width), ascending within the first `count`
            entries of each row.
        count: int32 (block, 1), the searched prefix of each row.
        queries: (block, n) values to look up, same dtype as the keys.
        strict: count keys ``< query`` if True, ``<= query`` if False.

    Returns:
        int32 (block, n), in ``[0, count]``.
    """
    sorted_keys = ops.stop_gradient(ops.convert_to_tensor(sorted_keys))
    queries = ops.stop_gradient(ops.convert_to_tensor(queries))
    width = sorted_keys.shape[1]
    steps = 32 if width is None else max(int(width), 1).bit_length()
    last = ops.shape(sorted_keys)[1] - 1
    low = ops.zeros(ops.shape(queries), "int32")
    high = ops.broadcast_to(ops.cast(count, "int32"), ops.shape(queries))
    for _ in range(steps):
        middle = (low + high) // 2
        probe = ops.take_along_axis(
            sorted_keys, ops.clip(middle, 0, ops.maximum(last, 0)), axis=1
        )
        below = probe < queries if strict else probe <= queries
        open_range = low < high
        go_up = ops.logical_and(open_range, below)
        go_down = ops.logical_and(open_range, ops.logical_not(below))
        low = ops.where(go_up, middle + 1, low)
        high = ops.where(go_down, middle, high)
    return low


def semi_hard_negative_columns(rows, positive, negative):
    """The semi-hard negative of every anchor-column pair (FaceNet, TFA).

    For anchor a and column j: the negative with the smallest distance
    strictly greater than ``d(a, j)``; where no negative is farther than
    ``d(a, j)``, the farthest negative (TensorFlow Addons'
    `triplet_semihard_loss`).

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
    rows = ops.stop_gradient(ops.convert_to_tensor(rows))
    order, sorted_keys, count = sorted_negatives(rows, negative)
    not_farther = count_sorted_below(sorted_keys, count, rows, strict=False)
    rank = ops.where(not_farther < count, not_farther, count - 1)
    rank = ops.where(rank > 0, rank, ops.zeros_like(rank))
    return ops.take_along_axis(order, rank, axis=1)
