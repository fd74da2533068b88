"""The pairwise contrastive loss (Hadsell, Chopra, LeCun 2006)."""

import keras
import numpy as np
from keras import ops

from safeloss import ops as safe_ops
from safeloss.distances import check_distance, check_floating, paired_distances
from safeloss.losses._base import SafeLoss, concrete_value
from safeloss.losses._triplet import (
    check_margin,
    hinge,
    in_compute_dtype,
    saturating_square,
)

__all__ = ["ContrastiveLoss", "contrastive_loss"]


def _pair_distances(y_pred, distance):
    """Distances (batch,) from `y_pred`, chosen by its shape.

    (batch,) or (batch, 1): already distances, as TensorFlow Addons takes
    them. (batch, 2, dim): embedding pairs, whose distance is computed here.
    """
    shape = tuple(y_pred.shape)
    if len(shape) == 1:
        return y_pred
    if len(shape) == 2 and shape[1] == 1:
        return ops.squeeze(y_pred, axis=-1)
    if len(shape) == 3 and shape[1] == 2:
        return paired_distances(y_pred[:, 0], y_pred[:, 1], distance)
    raise ValueError(
        "`y_pred` must be distances of shape (batch,) or (batch, 1), or "
        "embedding pairs of shape (batch, 2, dim); received shape "
        f"{shape}."
    )


def _similarity_labels(y_true, batch):
    """`y_true` as floats (batch,), checking the shape and, where the values
    are known, that they lie in [0, 1]."""
    y_true = ops.convert_to_tensor(y_true)
    shape = tuple(y_true.shape)
    if len(shape) == 2 and shape[1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    elif len(shape) != 1:
        raise ValueError(
            "`y_true` must have shape (batch,) or (batch, 1): 1 for similar "
            f"pairs, 0 for dissimilar ones; received shape {shape}."
        )
    if y_true.shape[0] is not None and batch is not None and y_true.shape[0] != batch:
        raise ValueError(
            f"`y_true` must have one label per pair ({batch}), received "
            f"shape {shape}."
        )
    values = concrete_value(y_true)
    if values is not None:
        values = values.astype(np.float64)
        bad = values[~((values >= 0) & (values <= 1))]
        if bad.size:
            raise ValueError(
                "`y_true` must be 1 for similar pairs and 0 for dissimilar "
                f"ones (values in [0, 1]); received {bad.flat[0]!r}."
            )
    return y_true


def contrastive_loss(y_true, y_pred, *, margin=1.0, distance="euclidean"):
    """Contrastive loss of each pair.

    Math: ``y d**2 + (1 - y) max(margin - d, 0)**2`` with ``y`` 1 for a
    similar pair and 0 for a dissimilar one (TensorFlow Addons' convention;
    values in between weigh the two terms).

    `y_pred` is read by its shape: (batch,) or (batch, 1) are distances `d`,
    as TensorFlow Addons takes them; (batch, 2, dim) are pairs of embeddings
    whose `distance` (``"euclidean"``, ``"squared_euclidean"`` or
    ``"cosine"``) is computed here. Any other shape raises a ValueError
    ((batch, 2) is ambiguous: a pair of scalars, or two distances?).

    Numerics: similar pairs are pulled to distance 0, exactly where the
    hand-written ``sqrt(sum(square(a - b)))`` has an infinite gradient and
    ``0 * inf`` turns every weight NaN. Embedding pairs use
    `paired_distances` (gradient bounded by 1, 0 at a zero difference) in
    float32 for float16 and bfloat16 inputs; squares saturate at the dtype's
    largest value instead of overflowing (``300**2`` exceeds float16). The
    value and gradient are finite for every finite input.

    Args:
        y_true: (batch,) or (batch, 1), values in [0, 1].
        y_pred: distances (batch,) or (batch, 1), or embedding pairs
            (batch, 2, dim); floating point.
        margin: finite number >= 0: dissimilar pairs farther apart than it
            cost nothing.
        distance: used for embedding pairs only.

    Returns:
        A tensor (batch,) in `y_pred`'s dtype.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> d = np.array([0.5, 0.5], "float32")
        >>> np.asarray(safeloss.contrastive_loss(np.array([1, 0]), d))
        array([0.25, 0.25], dtype=float32)

    References:
        Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an
        Invariant Mapping", CVPR 2006.
    """
    check_distance(distance)
    check_margin(margin)
    if y_true is None:
        raise ValueError(
            "`y_true` is required: expected 1 for similar pairs and 0 for "
            "dissimilar ones, received None."
        )
    y_pred = ops.convert_to_tensor(y_pred)
    check_floating(y_pred, "y_pred")
    dtype = safe_ops.dtype_name(y_pred)
    d = _pair_distances(in_compute_dtype(y_pred), distance)
    y = ops.cast(_similarity_labels(y_true, d.shape[0]), d.dtype)
    pull = saturating_square(d)
    push = saturating_square(hinge(margin - d))
    # One of the two weights is 0 for hard labels; with soft labels both
    # terms can be near the largest value, and their sum saturates.
    loss = safe_ops.saturating_cast(y * pull + (1.0 - y) * push, safe_ops.dtype_name(d))
    return safe_ops.saturating_cast(loss, dtype)


@keras.saving.register_keras_serializable(package="safeloss")
class ContrastiveLoss(SafeLoss):
    """Contrastive loss, NaN-free for similar pairs at distance 0.

    Math, shapes and numerics: see `contrastive_loss`. `y_true` is 1 for
    similar pairs and 0 for dissimilar ones, shape (batch,) or (batch, 1);
    `y_pred` is distances (batch,) or (batch, 1), or embedding pairs
    (batch, 2, dim).

    Args:
        margin: finite number >= 0.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``,
            for embedding pairs.
        reduction, name, dtype: see `safeloss.losses.SafeLoss`.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> pairs = np.array([[[1.0, 2.0], [1.0, 2.0]],  # similar, distance 0
        ...                   [[0.0, 0.0], [0.3, 0.4]]], "float32")  # dissimilar, 0.5
        >>> float(safeloss.ContrastiveLoss(margin=1.0)(np.array([1, 0]), pairs))
        0.125
    """

    label_kind = "float"

    def __init__(
        self,
        margin=1.0,
        distance="euclidean",
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
    ):
        check_margin(margin)
        check_distance(distance)
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.margin = margin
        self.distance = distance

    def call(self, y_true, y_pred):
        return contrastive_loss(
            y_true, y_pred, margin=self.margin, distance=self.distance
        )

    def get_config(self):
        config = super().get_config()
        config.update(margin=self.margin, distance=self.distance)
        return config
