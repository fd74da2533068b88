"""The triplet loss on explicit (anchor, positive, negative) triplets.

`triplet_loss` takes the three batches; `TripletLoss` takes a model output
of shape (batch, 3, dim) with the three stacked on axis 1, or, with a
`mining` mode, a batch of embeddings and their labels (the triplets are then
chosen inside the batch, in `safeloss.losses._mined_triplet`).

The helpers `check_margin`, `in_compute_dtype` and `saturating_square` are
shared with the contrastive loss.
"""

import math

import keras
from keras import ops

from safeloss import ops as safe_ops
from safeloss.distances import check_distance, check_floating, paired_distances
from safeloss.losses._base import SafeLoss
from safeloss.losses._distribute import gathers_global_batch

__all__ = ["MINING_MODES", "TripletLoss", "triplet_loss"]

MINING_MODES = (None, "batch_all", "batch_hard", "semi_hard")


def check_margin(margin):
    """Raises a ValueError unless `margin` is a finite number >= 0."""
    if (
        isinstance(margin, bool)
        or not isinstance(margin, (int, float))
        or not math.isfinite(margin)
        or margin < 0
    ):
        raise ValueError(
            f"Invalid `margin`: expected a finite number >= 0, received "
            f"{margin!r}."
        )


def in_compute_dtype(x):
    """`x` in its compute dtype, keeping the input dtype's zero threshold.

    float16 and bfloat16 go to float32 so that distances and their squares
    do not overflow (``300**2`` already exceeds float16). Entries below the
    input dtype's smallest normal number are set to 0 on the way, so that a
    vector of float16 subnormals is still a zero vector, as it is everywhere
    in safeloss. The flushed part is subtracted under `stop_gradient`, so the
    gradient still reaches every entry (a `where` would cut it at exact
    zeros, such as a zero anchor).
    """
    dtype = safe_ops.dtype_name(x)
    work = safe_ops.compute_dtype(dtype)
    if work == dtype:
        return x
    x = ops.cast(x, work)
    subnormal = ops.where(ops.abs(x) < safe_ops.tiny(dtype), x, ops.zeros_like(x))
    return x - ops.stop_gradient(subnormal)


def saturating_square(x):
    """``x**2``, saturating at the dtype's largest value instead of inf."""
    magnitude = ops.abs(x)
    return safe_ops.saturating_multiply(magnitude, magnitude, safe_ops.dtype_name(x))


def _difference_of_squares(x, y):
    """``x**2 - y**2`` for ``x, y >= 0``, saturating at +-max.

    Evaluated as ``(x - y) (x + y)``: the squares themselves may overflow
    (and ``inf - inf`` is NaN) where their difference does not. The gradient
    is ``2x`` and ``-2y`` wherever the result is not saturated, 0 where it is.
    """
    dtype = safe_ops.dtype_name(x)
    big = safe_ops.largest(dtype)
    total = safe_ops.saturating_cast(x + y, dtype)
    gap = x - y
    # |gap| <= total, so the product can only overflow where total > 1,
    # and the divisor is kept >= 1 so no branch divides by 0.
    limit = big / ops.where(total > 1, total, ops.ones_like(total))
    overflow = ops.abs(gap) > limit
    product = total * ops.where(overflow, ops.zeros_like(gap), gap)
    return ops.where(overflow, ops.sign(gap) * big, product)


def hinge(x):
    """``max(x, 0)`` with `where`, which keeps float64 on every backend."""
    return ops.where(x > 0, x, ops.zeros_like(x))


def triplet_loss(
    anchor, positive, negative, *, margin=1.0, distance="euclidean", soft=False
):
    """Triplet loss of each (anchor, positive, negative) triplet.

    Math: ``max(d(a, p) - d(a, n) + margin, 0)``, or with ``soft=True``
    ``softplus(d(a, p) - d(a, n) + margin)``, for the distance `d`
    (``"euclidean"`` ``||a - b||``, ``"squared_euclidean"`` ``||a - b||**2``
    or ``"cosine"`` ``1 - cos(a, b)``).

    Numerics: the hand-written ``sqrt(sum(square(a - p)))`` has an infinite
    gradient where the anchor equals the positive (duplicated images, a
    collapsed encoder), and ``0 * inf`` makes every weight NaN; it also
    overflows above 1.8e19 in float32 and 256 in float16. Here Euclidean
    distances come from `paired_distances` (scaled norm with a gradient of
    magnitude at most 1, 0 at a zero difference); squared distances enter as
    ``(d_ap - d_an) (d_ap + d_an)``, so two huge squares never give
    ``inf - inf``; ``log(1 + exp(x))`` is the overflow-free
    `safeloss.ops.softplus`; float16 and bfloat16 are computed in float32 and
    the loss saturates at their largest value. The value and gradient are
    finite for every finite input; the gradient is 0 at the hinge's kink.

    Args:
        anchor: floating-point tensor (batch, dim).
        positive: tensor (batch, dim), same class as the anchor.
        negative: tensor (batch, dim), another class.
        margin: finite number >= 0.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.
        soft: replace the hinge by the smooth softplus.

    Returns:
        A tensor (batch,) in the anchor's dtype.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> a = np.array([[0.0, 0.0]], "float32")
        >>> loss = safeloss.triplet_loss(a, a, np.array([[0.3, 0.4]], "float32"))
        >>> np.asarray(loss)
        array([0.5], dtype=float32)

    References:
        Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for
        Face Recognition and Clustering", CVPR 2015.
        Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person
        Re-Identification", arXiv:1703.07737, 2017 (the soft margin).
    """
    check_distance(distance)
    check_margin(margin)
    anchor = ops.convert_to_tensor(anchor)
    check_floating(anchor, "anchor")
    dtype = safe_ops.dtype_name(anchor)
    members = [anchor]
    for name, x in (("positive", positive), ("negative", negative)):
        x = ops.convert_to_tensor(x)
        check_floating(x, name)
        if tuple(x.shape) != tuple(anchor.shape):
            raise ValueError(
                f"`{name}` must have the anchor's shape {tuple(anchor.shape)}, "
                f"received {tuple(x.shape)}."
            )
        members.append(ops.cast(x, dtype))
    if len(anchor.shape) != 2:
        raise ValueError(
            "`anchor`, `positive` and `negative` must have rank 2 (batch, "
            f"dim), received shape {tuple(anchor.shape)}."
        )
    a, p, n = (in_compute_dtype(x) for x in members)
    if distance == "squared_euclidean":
        gap = _difference_of_squares(
            paired_distances(a, p, "euclidean"), paired_distances(a, n, "euclidean")
        )
    else:
        gap = paired_distances(a, p, distance) - paired_distances(a, n, distance)
    violation = gap + margin
    loss = safe_ops.softplus(violation) if soft else hinge(violation)
    return safe_ops.saturating_cast(loss, dtype)


def check_mining(mining):
    if mining not in MINING_MODES:
        raise ValueError(
            f"Invalid `mining`: expected one of {MINING_MODES}, received "
            f"{mining!r}."
        )


@keras.saving.register_keras_serializable(package="safeloss")
class TripletLoss(SafeLoss):
    """Triplet loss, NaN-free where anchors equal positives.

    Math and numerics: see `triplet_loss`.

    With ``mining=None`` (the default) the model outputs the triplets: `y_pred`
    has shape (batch, 3, dim), anchor, positive and negative stacked on axis
    1, and `y_true` is ignored (any array with the batch first, or None, so
    ``model.fit(x)`` works). With a mining mode (``"batch_all"``,
    ``"batch_hard"``, ``"semi_hard"``) `y_pred` is a batch of embeddings
    (batch, dim) and `y_true` their integer class labels (batch,) or
    (batch, 1); the triplets are chosen inside the batch.

    Args:
        margin: finite number >= 0.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.
        soft: use ``softplus`` in place of the hinge.
        mining: None, ``"batch_all"``, ``"batch_hard"`` or ``"semi_hard"``.
        global_batch: under `tf.distribute` with more than one replica,
            mine over the rows of all replicas (gathered) instead of each
            replica's own; see `docs/multi-device.md`. It changes the result
            only with `mining`, and nothing on JAX (`DataParallel` already
            hands the loss the global batch) or PyTorch.
        reduction, name, dtype: see `safeloss.losses.SafeLoss`.

    Example:
        >>> import keras
        >>> import safeloss
        >>> model = keras.Sequential([
        ...     keras.Input((3, 8)), keras.layers.Dense(4)])  # (batch, 3, 4)
        >>> model.compile(optimizer="adam", loss=safeloss.TripletLoss(margin=2.0))
    """

    def __init__(
        self,
        margin=1.0,
        distance="euclidean",
        soft=False,
        mining=None,
        global_batch=False,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
    ):
        check_margin(margin)
        check_distance(distance)
        check_mining(mining)
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.margin = margin
        self.distance = distance
        self.soft = bool(soft)
        self.mining = mining
        self.global_batch = bool(global_batch)

    @gathers_global_batch
    def __call__(self, y_true, y_pred, sample_weight=None):
        return super().__call__(y_true, y_pred, sample_weight)

    @property
    def label_kind(self):
        return "ignored" if self.mining is None else "integer"

    def call(self, y_true, y_pred):
        options = dict(margin=self.margin, distance=self.distance, soft=self.soft)
        if self.mining is None:
            shape = tuple(y_pred.shape)
            if len(shape) != 3 or shape[1] != 3:
                raise ValueError(
                    "`y_pred` must have shape (batch, 3, dim): anchor, "
                    "positive and negative stacked on axis 1 (or set "
                    f"`mining` to mine a (batch, dim) batch); received shape "
                    f"{shape}."
                )
            return triplet_loss(
                y_pred[:, 0], y_pred[:, 1], y_pred[:, 2], **options
            )
        from safeloss.losses._mined_triplet import MINED_TRIPLET_LOSSES

        if len(y_true.shape) == 2 and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        return MINED_TRIPLET_LOSSES[self.mining](y_true, y_pred, **options)

    def get_config(self):
        config = super().get_config()
        config.update(
            margin=self.margin,
            distance=self.distance,
            soft=self.soft,
            mining=self.mining,
            global_batch=self.global_batch,
        )
        return config
