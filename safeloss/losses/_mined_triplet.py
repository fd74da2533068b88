"""Triplet losses that mine their triplets in the batch: batch-all,
batch-hard and semi-hard.

The model outputs one embedding per sample, ``y_pred`` (batch, dim), and
``y_true`` holds integer class labels (batch,) or (batch, 1). For anchor a,
a positive p is another sample with a's label and a negative n a sample with
another label; ``d`` is the distance (`safeloss.pairwise_distances`) and
``m`` the margin. A triplet's loss is ``[d_ap - d_an + m]_+`` (hinge) or
``softplus(d_ap - d_an + m)`` (``soft=True``).

* batch-all: every valid triplet (a, p, n); the loss is the mean over valid
  triplets (``average="valid"``) or over triplets with a non-zero loss
  (``average="positive"``, as in Hermans et al.'s "BA+" variant).
* batch-hard: per anchor, its farthest positive and nearest negative; mean
  over anchors that have both (Hermans et al., 2017).
* semi-hard: per anchor-positive pair, the nearest negative farther than the
  positive, or the farthest negative where there is none; mean over pairs
  whose anchor has a negative (Schroff et al., 2015; TensorFlow Addons).

Every function returns one value per anchor, scaled so that their mean over
the batch (Keras' ``sum_over_batch_size``) is the loss above: anchor a gets
``batch * (sum of its terms) / (number of valid terms in the batch)``.
`sample_weight` therefore weights anchors: the weighted mean is
``sum_a w_a S_a / count``, with ``count`` the batch's number of valid terms.
Where nothing is valid (one class, all labels distinct, a batch of one) the
loss is 0 with a zero, finite gradient.

Memory is O(batch**2): each block of anchor rows builds its own rows of the
distance matrix from the embeddings (`safeloss.mining.distance_rows`), so
the forward pass holds (block, batch) temporaries rather than those of the
whole matrix; mining runs on the block under `stop_gradient`; gradients
reach the embeddings only through the distances the mining picked, and the
rows' backward pass needs only the embeddings and the rows. Batch-hard
picks two distances per anchor and computes them again from the
embeddings, so its backward pass is O(batch * dim). When there is
more than one block, each block is rematerialised (`keras.remat`): the
backward pass recomputes it instead of keeping its temporaries, about one
more forward pass of time for a peak of one block's temporaries. Compiled
(XLA, `jax.jit`), the blocks run in a loop, which keeps the compiler from
merging the recomputation back into the forward pass.

References:
    Schroff, Kalenichenko, Philbin. FaceNet: A Unified Embedding for Face
    Recognition and Clustering. CVPR 2015. arXiv:1503.03832.
    Hermans, Beyer, Leibe. In Defense of the Triplet Loss for Person
    Re-Identification. 2017. arXiv:1703.07737.
"""

import functools

import keras
from keras import ops

from safeloss import mining
from safeloss import ops as safe_ops
from safeloss.distances import check_distance, paired_distances
from safeloss.losses._base import SafeLoss, integer_labels
from safeloss.losses._distribute import gathers_global_batch

__all__ = [
    "AVERAGES",
    "MINED_TRIPLET_LOSSES",
    "TFA_DISTANCE_METRICS",
    "TripletHardLoss",
    "TripletSemiHardLoss",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "semi_hard_triplet_loss",
]

AVERAGES = ("valid", "positive")

# TensorFlow Addons' names for safeloss' distances. TFA's "angular" is
# 1 - cosine similarity, safeloss' "cosine".
TFA_DISTANCE_METRICS = {
    "L2": "euclidean",
    "squared-L2": "squared_euclidean",
    "angular": "cosine",
}


def _check_inputs(labels, embeddings):
    labels = integer_labels(labels, "labels")
    embeddings = ops.convert_to_tensor(embeddings)
    dtype = safe_ops.dtype_name(embeddings)
    if not dtype.startswith(("float", "bfloat")):
        raise ValueError(
            "`embeddings` must be a floating-point tensor, received "
            f"dtype={dtype}."
        )
    if len(embeddings.shape) != 2:
        raise ValueError(
            "`embeddings` must have rank 2 (batch, dim), received shape "
            f"{tuple(embeddings.shape)}."
        )
    label_shape = tuple(labels.shape)
    if len(label_shape) == 2 and label_shape[1] == 1:
        labels = ops.squeeze(labels, axis=1)
    elif len(label_shape) != 1:
        raise ValueError(
            "`labels` must have shape (batch,) or (batch, 1), received shape "
            f"{label_shape}."
        )
    batch, label_batch = embeddings.shape[0], labels.shape[0]
    if batch is not None and label_batch is not None and batch != label_batch:
        raise ValueError(
            f"`labels` must have one label per embedding: expected {batch} "
            f"labels, received shape {label_shape}."
        )
    return labels, embeddings


def _check_margin(margin):
    try:
        margin = float(margin)
    except (TypeError, ValueError):
        raise ValueError(f"`margin` must be a number, received {margin!r}.") from None
    if margin != margin or margin in (float("inf"), float("-inf")):
        raise ValueError(f"`margin` must be finite, received {margin!r}.")
    return margin


def _row_scale(values, tiny, floor=0.0):
    """A per-row positive scale under `stop_gradient`: the larger of the
    row's largest entry and `floor`, or 1 where that is below tiny."""
    scale = ops.stop_gradient(ops.max(values, axis=1, keepdims=True))
    scale = ops.where(scale >= floor, scale, ops.full_like(scale, floor))
    return ops.where(scale >= tiny, scale, ops.ones_like(scale))


def _triplet_terms(difference, margin, soft):
    """``[difference + m]_+`` or ``softplus(difference + m)``, saturating.

    `difference` is ``d_ap - d_an``, finite; adding a huge margin could still
    overflow, so the sum is clamped (a clamped entry has a zero gradient).
    """
    big = safe_ops.largest(safe_ops.dtype_name(difference))
    shifted = safe_ops.clamp(difference + margin, -big, big)
    if soft:
        return safe_ops.softplus(shifted)
    return ops.where(shifted > 0, shifted, ops.zeros_like(shifted))


def _sum_in_row_units(terms, tiny):
    """``(s, sum(terms / s))`` per row for non-negative `terms`.

    A row of up to batch terms each as large as the dtype allows would
    overflow if summed directly; in units of the row's largest term the sum
    is at most the row length.
    """
    scale = _row_scale(terms, tiny)
    return scale[:, 0], ops.sum(terms / scale, axis=1)


def _mined_loss(labels, embeddings, distance, block_size, mine_block):
    """Runs `mine_block` on each block of anchor rows and scales the result.

    `mine_block(rows, positive, negative)` returns, per anchor of the block,
    ``(scale, unit_sum, count)``: the anchor's summed terms are
    ``scale * unit_sum`` and `count` is its number of valid terms.
    """
    check_distance(distance)
    labels, embeddings = _check_inputs(labels, embeddings)
    work = safe_ops.compute_dtype(safe_ops.dtype_name(embeddings))

    def block_terms(rows, positive, negative):
        scale, unit_sum, count = mine_block(rows, positive, negative)
        return ops.stack([scale, unit_sum, ops.cast(count, work)], axis=1)

    terms = _over_blocks(labels, embeddings, distance, block_size, block_terms)
    scale, unit_sum, count = ops.unstack(terms, 3, axis=1)
    return _anchor_values(scale, unit_sum, count, embeddings)


def _anchor_values(scale, unit_sum, count, embeddings):
    """``batch * scale * unit_sum / sum(count)`` per anchor, saturating, in
    the embeddings' dtype (0 where nothing in the batch is valid)."""
    dtype = safe_ops.dtype_name(embeddings)
    work = safe_ops.dtype_name(scale)
    total = ops.stop_gradient(ops.sum(ops.cast(count, work)))
    batch = ops.cast(ops.shape(embeddings)[0], work)
    factor = unit_sum * (batch / ops.where(total > 1, total, ops.ones_like(total)))
    factor = ops.where(factor > 0, factor, ops.zeros_like(factor))
    values = safe_ops.saturating_multiply(scale, factor, work)
    return safe_ops.saturating_cast(values, dtype)


def _over_blocks(labels, embeddings, distance, block_size, block_fn):
    """``block_fn(rows, positive, negative)`` (block, 3), in the compute
    dtype, for every block of anchor rows of the distance matrix, as
    (batch, 3)."""
    work = safe_ops.compute_dtype(safe_ops.dtype_name(embeddings))
    blocks = mining.anchor_blocks(embeddings.shape[0], block_size)

    def block_terms(x, labels, start, size):
        rows = ops.cast(mining.distance_rows(x, start, size=size, distance=distance), work)
        positive, negative = mining.label_masks(labels, start, size=size)
        return block_fn(rows, positive, negative)

    if len(blocks) == 1:
        start, stop = blocks[0]
        size = None if stop is None else stop - start
        return block_terms(embeddings, labels, start, size)
    return _blockwise(block_terms, embeddings, labels, blocks, work)


def _blockwise(block_terms, embeddings, labels, blocks, work):
    """``block_terms(x, labels, start, size)`` (size, 3) for every block, as
    (batch, 3).

    Each block is rematerialised (`keras.remat`): the backward pass recomputes
    it instead of keeping its temporaries, else an eager tape keeps every
    block's (block, batch) temporaries (TensorFlow's custom-gradient ops
    included), a dozen batch x batch matrices in all (over 8 GiB at batch
    8192). In a compiled graph the blocks run in a loop (`fori_loop`):
    unrolled, XLA merges each recomputation with the forward pass it repeats
    and keeps all the temporaries again (7 GiB at batch 8192 on TensorFlow
    XLA). A loop needs blocks of one size, so the last block starts at
    ``batch - size`` and recomputes a few rows of the one before; the
    overwrite leaves their values unchanged and their gradient counted once.
    """
    batch = embeddings.shape[0]
    size = blocks[0][1] - blocks[0][0]
    if not _compiles_loops():
        parts = []
        for start, stop in blocks:
            block = keras.remat(functools.partial(block_terms, start=start, size=stop - start))
            parts.append(block(embeddings, labels))
        return ops.concatenate(parts, axis=0)

    def body(index, terms):
        start = ops.minimum(index * size, batch - size)
        block = keras.remat(functools.partial(block_terms, start=start, size=size))
        # A scatter rather than `slice_update`: TensorFlow has no gradient
        # for the XLA dynamic-update-slice that `slice_update` becomes.
        rows = ops.expand_dims(ops.arange(size, dtype="int32") + start, 1)
        return ops.scatter_update(terms, rows, block(embeddings, labels))

    initial = ops.zeros((batch, 3), work)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Keras' `fori_loop` leaves `maximum_iterations` unset, and XLA can
        # only differentiate a while loop whose trip count is bounded.
        return tf.while_loop(
            lambda index, terms: index < len(blocks),
            lambda index, terms: (index + 1, body(index, terms)),
            (0, initial),
            maximum_iterations=len(blocks),
        )[1]
    return ops.fori_loop(0, len(blocks), body, initial)


def _compiles_loops():
    """Whether blocks should run in a compiled loop: JAX, or TensorFlow while
    tracing a graph. Eager TensorFlow and PyTorch run Python loops anyway."""
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    return False


def batch_hard_triplet_loss(
    labels, embeddings, *, margin=1.0, distance="euclidean", soft=False,
    block_size=None,
):
    """Batch-hard triplet loss: each anchor's hardest positive and negative.

    Math: for every anchor a with at least one positive and one negative,
    ``l_a = [max_p d_ap - min_n d_an + m]_+`` (or ``softplus(...)`` with
    ``soft=True``, margin included); the loss is the mean of ``l_a`` over
    those anchors.

    Args:
        labels: integer class labels (batch,) or (batch, 1).
        embeddings: floating-point tensor (batch, dim).
        margin: the margin m.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.
        soft: use softplus instead of the hinge.
        block_size: anchors mined at a time (default: about 2**23 distances
            per block).

    Returns:
        (batch,) per-anchor values in the embeddings' dtype, ``batch * l_a /
        (number of valid anchors)`` for valid anchors and 0 elsewhere, so
        their mean is the loss.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> x = np.array([[0.0], [1.0], [1.5], [3.0]], "float32")
        >>> values = safeloss.batch_hard_triplet_loss(np.array([0, 0, 1, 1]), x)
        >>> round(float(np.mean(np.asarray(values))), 4)
        1.125

    Numerics: anchors without a positive or a negative get 0 (TensorFlow
    Addons reads a masked maximum there and returns a "phantom" loss);
    ``d_ap - d_an + m`` saturates instead of overflowing; the per-anchor
    scaling saturates at the dtype's largest value. The two chosen
    distances are computed again from the embeddings (`paired_distances`:
    exact where the Gram matrix cancels digits, a gradient of magnitude at
    most 1), and gradients flow through them only.
    """
    margin = _check_margin(margin)
    check_distance(distance)
    labels, embeddings = _check_inputs(labels, embeddings)
    work = safe_ops.compute_dtype(safe_ops.dtype_name(embeddings))

    def select(rows, positive, negative):
        far, near = mining.hardest_columns(rows, positive, negative)
        valid = ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1))
        return ops.cast(ops.stack([far, near, ops.cast(valid, "int32")], axis=1), work)

    # Mining needs no gradient; the two chosen distances are then computed
    # from the embeddings, so the backward pass is O(batch * dim) instead of
    # a (batch, batch) cotangent through the distance matrix (column indices
    # are exact in the compute dtype up to 2**24 rows).
    chosen = _over_blocks(
        labels, ops.stop_gradient(embeddings), distance, block_size, select
    )
    far, near, valid = ops.unstack(ops.cast(chosen, "int32"), 3, axis=1)
    hardest_positive = paired_distances(embeddings, ops.take(embeddings, far, axis=0), distance)
    hardest_negative = paired_distances(embeddings, ops.take(embeddings, near, axis=0), distance)
    terms = _triplet_terms(
        ops.cast(hardest_positive, work) - ops.cast(hardest_negative, work), margin, soft
    )
    terms = ops.where(valid > 0, terms, ops.zeros_like(terms))
    scale, unit_sum = _sum_in_row_units(terms[:, None], safe_ops.tiny(work))
    return _anchor_values(scale, unit_sum, valid, embeddings)


def semi_hard_triplet_loss(
    labels, embeddings, *, margin=1.0, distance="euclidean", soft=False,
    block_size=None,
):
    """Semi-hard triplet loss (FaceNet), as TensorFlow Addons computes it.

    Math: for every anchor-positive pair (a, p) whose anchor has a negative,
    ``n* = argmin {d_an : d_an > d_ap}`` over negatives n, or
    ``argmax_n d_an`` where no negative is farther than p; the pair's loss is
    ``[d_ap - d_an* + m]_+`` (``softplus`` with ``soft=True``) and the loss is
    the mean over those pairs.

    Args:
        labels: integer class labels (batch,) or (batch, 1).
        embeddings: floating-point tensor (batch, dim).
        margin: the margin m.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.
        soft: use softplus instead of the hinge.
        block_size: anchors mined at a time.

    Returns:
        (batch,) per-anchor values, ``batch * (sum of the anchor's pair
        losses) / (number of valid pairs in the batch)``.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.5], [3.0, 4.0]], "float32")
        >>> labels = np.array([0, 0, 1, 1])
        >>> np.round(np.asarray(safeloss.semi_hard_triplet_loss(labels, x)), 4)
        array([0.5   , 0.5   , 5.1098, 0.6098], dtype=float32)

    Numerics: the search for n* is a stable sort of each anchor's negatives
    and a binary search (O(batch**2) memory; TensorFlow Addons tiles a
    (batch**2, batch) tensor). Pairs whose anchor has no negative are not
    counted (TFA compares them with a distance of 0 and adds a phantom
    loss). Row sums are taken in units of the row's largest term, so they
    saturate instead of overflowing.
    """
    margin = _check_margin(margin)

    def mine_block(rows, positive, negative):
        chosen = mining.semi_hard_negative_columns(rows, positive, negative)
        valid = ops.logical_and(positive, ops.any(negative, axis=1, keepdims=True))
        negative_distance = ops.take_along_axis(rows, chosen, axis=1)
        terms = _triplet_terms(rows - negative_distance, margin, soft)
        terms = ops.where(valid, terms, ops.zeros_like(terms))
        scale, unit_sum = _sum_in_row_units(terms, safe_ops.tiny(safe_ops.dtype_name(rows)))
        return scale, unit_sum, ops.sum(ops.cast(valid, "int32"), axis=1)

    return _mined_loss(labels, embeddings, distance, block_size, mine_block)


def _positives_beyond_rank(active, positive, rank):
    """``#{p positive : active_p > rank_n}`` for every column n.

    `active` (block, batch) holds each positive's number of active
    negatives; the negatives active with p are the first ``active_p`` in
    sorted order, so the negative at sorted rank r is active with the
    positives whose count exceeds r. A histogram of the counts (a segment
    sum over (row, count) cells) and its cumulative sum give that number
    for every rank in O(block * batch).
    """
    block, width = ops.shape(active)[0], ops.shape(active)[1]
    bins = width + 1
    rows = ops.expand_dims(ops.arange(block, dtype="int32"), 1)
    histogram = ops.segment_sum(
        ops.reshape(ops.cast(positive, "float32"), (-1,)),
        ops.reshape(rows * bins + active, (-1,)),
        num_segments=block * bins,
    )
    at_or_below = ops.cumsum(ops.reshape(histogram, (block, bins)), axis=1)
    positives = ops.sum(ops.cast(positive, "float32"), axis=1, keepdims=True)
    beyond = ops.cast(positives - at_or_below, "int32")
    return ops.take_along_axis(beyond, ops.minimum(rank, width), axis=1)


def batch_all_triplet_loss(
    labels, embeddings, *, margin=1.0, distance="euclidean", soft=False,
    average="valid", block_size=None,
):
    """Batch-all triplet loss: every valid triplet in the batch.

    Math: ``L = sum_{a,p,n} [d_ap - d_an + m]_+ / count`` over triplets with
    p a positive and n a negative of a; ``count`` is the number of those
    triplets (``average="valid"``) or of those with a non-zero loss
    (``average="positive"``).

    Algorithm: O(batch**2 log batch) time. An anchor's triplets sum to
    ``sum_p k_p (d_ap + m) - sum_n w_n d_an`` with ``k_p = #{n : d_an < d_ap
    + m}`` (the negatives active with positive p) and ``w_n = #{p : d_an <
    d_ap + m}`` (the positives negative n is active with). The negatives are
    sorted once per anchor; ``k_p`` is a binary search of ``d_ap + m`` among
    them, and ``w_n`` the number of positives whose ``k_p`` exceeds n's rank
    (a histogram of the ``k_p``). The counts are constants for the gradient,
    which reaches every distance elementwise: no (batch, batch, batch)
    tensor, and no gather or scatter of distances, in either pass.

    Args:
        labels: integer class labels (batch,) or (batch, 1).
        embeddings: floating-point tensor (batch, dim).
        margin: the margin m.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.
        soft: must be False: a softplus of every triplet has no prefix-sum
            form, so it would need O(batch**3) time (raises ValueError).
        average: ``"valid"`` or ``"positive"``, see above.
        block_size: anchors mined at a time.

    Returns:
        (batch,) per-anchor values, ``batch * (sum of the anchor's triplet
        losses) / count``.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.5], [3.0, 4.0]], "float32")
        >>> labels = np.array([0, 0, 1, 1])
        >>> np.round(np.asarray(safeloss.batch_all_triplet_loss(labels, x)), 4)
        array([0.25  , 0.25  , 5.1098, 0.6098], dtype=float32)

    Numerics: each anchor's distances are divided by
    ``max(max_j d_aj, |m|)`` first, so counts times distances cannot
    overflow; rounding that would make an anchor's sum slightly negative is
    clamped to 0. An anchor with no positive or no
    negative contributes 0, and a batch without valid triplets gives 0.
    """
    margin = _check_margin(margin)
    if soft:
        raise ValueError(
            "`soft=True` is not supported for batch-all mining: a softplus "
            "over every triplet has no sorted prefix-sum form and would take "
            "O(batch**3) time. Use mining='batch_hard' or 'semi_hard' with "
            "soft=True, or soft=False."
        )
    if average not in AVERAGES:
        raise ValueError(
            f"Invalid `average`: expected one of {AVERAGES}, received {average!r}."
        )

    def mine_block(rows, positive, negative):
        tiny = safe_ops.tiny(safe_ops.dtype_name(rows))
        scale = _row_scale(rows, tiny, floor=abs(margin))
        units = rows / scale
        thresholds = units + margin / scale
        unit_keys = mining.sort_keys(ops.stop_gradient(units))
        sorted_keys, negatives = mining.sorted_negatives(unit_keys, negative)
        active = mining.count_sorted_below(
            sorted_keys, negatives, mining.sort_keys(ops.stop_gradient(thresholds)),
            strict=True,
        )
        active = ops.where(positive, active, ops.zeros_like(active))
        weights = _positives_beyond_rank(
            active, positive, mining.count_sorted_below(
                sorted_keys, negatives, unit_keys, strict=True
            ),
        )
        weights = ops.where(negative, weights, ops.zeros_like(weights))
        work = units.dtype
        total = ops.sum(ops.cast(active, work) * thresholds, axis=1) - ops.sum(
            ops.cast(weights, work) * units, axis=1
        )
        total = ops.where(total > 0, total, ops.zeros_like(total))
        if average == "valid":
            positives = ops.sum(ops.cast(positive, work), axis=1)
            count = positives * ops.cast(negatives[:, 0], work)
        else:
            count = ops.sum(ops.cast(active, work), axis=1)
        return scale[:, 0], total, count

    return _mined_loss(labels, embeddings, distance, block_size, mine_block)


MINED_TRIPLET_LOSSES = {
    "batch_all": batch_all_triplet_loss,
    "batch_hard": batch_hard_triplet_loss,
    "semi_hard": semi_hard_triplet_loss,
}


def _check_distance_metric(distance_metric):
    if distance_metric not in TFA_DISTANCE_METRICS:
        raise ValueError(
            "Invalid `distance_metric`: expected one of "
            f"{tuple(TFA_DISTANCE_METRICS)}, received {distance_metric!r}."
        )


@keras.saving.register_keras_serializable(package="safeloss")
class TripletSemiHardLoss(SafeLoss):
    """Semi-hard triplet loss with TensorFlow Addons' name and arguments.

    Drop-in for `tfa.losses.TripletSemiHardLoss`: the same values (TFA 0.23)
    on batches where every anchor has a positive and a negative, and on the
    other batches the safeloss answer (pairs whose anchor has no negative
    are left out; 0 when nothing is valid) instead of NaN or a phantom
    loss. See `semi_hard_triplet_loss` for the formula.

    Args:
        margin: the margin.
        distance_metric: ``"L2"`` (Euclidean), ``"squared-L2"`` or
            ``"angular"`` (1 - cosine similarity).
        global_batch: under `tf.distribute` with more than one replica,
            mine and normalise over the rows of all replicas (gathered)
            instead of each replica's own; see `docs/multi-device.md`. No
            effect elsewhere (JAX `DataParallel` already sees the global
            batch).
        reduction, name, dtype: see `SafeLoss`. With ``"none"`` the loss
            returns one value per anchor, scaled so that their mean is the
            loss; `sample_weight` weights anchors.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.5], [3.0, 4.0]], "float32")
        >>> labels = np.array([0, 0, 1, 1])
        >>> round(float(safeloss.TripletSemiHardLoss()(labels, x)), 4)
        1.6799
    """

    label_kind = "integer"

    def __init__(self, margin=1.0, distance_metric="L2", global_batch=False,
                 reduction="sum_over_batch_size", name=None, dtype=None):
        _check_distance_metric(distance_metric)
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.margin = _check_margin(margin)
        self.distance_metric = distance_metric
        self.global_batch = bool(global_batch)

    @gathers_global_batch
    def __call__(self, y_true, y_pred, sample_weight=None):
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        return semi_hard_triplet_loss(
            y_true, y_pred, margin=self.margin,
            distance=TFA_DISTANCE_METRICS[self.distance_metric],
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            margin=self.margin, distance_metric=self.distance_metric,
            global_batch=self.global_batch,
        )
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class TripletHardLoss(SafeLoss):
    """Batch-hard triplet loss with TensorFlow Addons' name and arguments.

    Drop-in for `tfa.losses.TripletHardLoss`: hardest positive and hardest
    negative per anchor, mean over anchors. With ``soft=True`` the loss is
    ``log(1 + exp(d_hp - d_hn))`` without the margin, as in TFA 0.23 (the
    native `batch_hard_triplet_loss` keeps the margin). Anchors without a
    positive or a negative are left out instead of adding TFA's phantom
    loss. See `batch_hard_triplet_loss`.

    Args:
        margin: the margin (unused when ``soft=True``, as in TFA).
        soft: softplus instead of the hinge.
        distance_metric: ``"L2"``, ``"squared-L2"`` or ``"angular"``.
        global_batch: under `tf.distribute` with more than one replica,
            mine and normalise over the rows of all replicas (gathered)
            instead of each replica's own; see `docs/multi-device.md`. No
            effect elsewhere (JAX `DataParallel` already sees the global
            batch).
        reduction, name, dtype: see `SafeLoss`; per-anchor values with
            ``"none"``, `sample_weight` weights anchors.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.5], [3.0, 4.0]], "float32")
        >>> labels = np.array([0, 0, 1, 1])
        >>> round(float(safeloss.TripletHardLoss()(labels, x)), 4)
        1.6799
    """

    label_kind = "integer"

    def __init__(self, margin=1.0, soft=False, distance_metric="L2",
                 global_batch=False, reduction="sum_over_batch_size",
                 name=None, dtype=None):
        _check_distance_metric(distance_metric)
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.margin = _check_margin(margin)
        self.soft = bool(soft)
        self.distance_metric = distance_metric
        self.global_batch = bool(global_batch)

    @gathers_global_batch
    def __call__(self, y_true, y_pred, sample_weight=None):
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        return batch_hard_triplet_loss(
            y_true, y_pred, margin=0.0 if self.soft else self.margin,
            distance=TFA_DISTANCE_METRICS[self.distance_metric], soft=self.soft,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            margin=self.margin, soft=self.soft,
            distance_metric=self.distance_metric,
            global_batch=self.global_batch,
        )
        return config
