"""`IdentityLoss`: for models whose output already is their loss."""

import keras
from keras import ops

from safeloss import ops as safe_ops
from safeloss.losses._base import SafeLoss


def identity_loss(y_true, y_pred):
    """The per-sample loss a model computed itself: `y_pred`, averaged over
    every axis but the batch axis. `y_true` is ignored.

    Args:
        y_true: ignored (may be None).
        y_pred: the model's per-sample losses, shape (batch,) or (batch, ...).

    Returns:
        A (batch,) tensor.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> per_sample = np.array([[0.5, 1.5], [2.0, 2.0]], "float32")
        >>> np.asarray(safeloss.identity_loss(None, per_sample))
        array([1., 2.], dtype=float32)
    """
    del y_true
    y_pred = ops.convert_to_tensor(y_pred)
    if len(y_pred.shape) == 0:
        raise ValueError(
            "`y_pred` must have a batch axis: expected shape (batch,) or "
            "(batch, ...), received a scalar."
        )
    if len(y_pred.shape) == 1:
        return y_pred
    return safe_ops.mean(y_pred, axis=tuple(range(1, len(y_pred.shape))))


@keras.saving.register_keras_serializable(package="safeloss")
class IdentityLoss(SafeLoss):
    """Returns the model's output, reduced: the loss of a model that computes
    its own loss (a `TripletLossLayer` on its output, for example).

    `y_true` is ignored and may be None, so the model trains with `fit(x)`.
    Unlike a ``lambda y_true, y_pred: y_pred`` or a user-defined function,
    it is registered: the compiled model saves to `.keras` and loads in safe
    mode. Old files compiled with a lambda load with
    ``keras.saving.load_model(path, compile=False)``; compile again with
    ``IdentityLoss()``.

    Args:
        reduction, name, dtype: as for every safeloss loss (`SafeLoss`).

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> loss = safeloss.IdentityLoss()
        >>> float(loss(None, np.array([0.5, 1.5], "float32")))
        1.0
    """

    label_kind = "ignored"

    def __init__(self, reduction="sum_over_batch_size", name="identity_loss", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true, y_pred):
        return identity_loss(y_true, y_pred)
