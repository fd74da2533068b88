"""The base class of every safeloss loss, and the helpers it shares.

`SafeLoss` is a `keras.losses.Loss` with four differences from Keras' own
base class, each closing a trap of Keras 3.15:

* `y_true` may be ``None`` for losses that ignore it (`fit(x)` without
  targets); Keras' `Loss.__call__` fails on ``None`` on every backend.
* Integer labels stay integers. Keras casts `y_true` to the loss dtype, so in
  float16 the labels 2049 and 2050 both become 2048. Integer-valued float
  labels become int32; other floats raise (where values can be checked).
* `get_config` includes `dtype` (Keras' base class drops it).
* The reduction keeps the loss dtype on every backend (Keras' reduction
  divides with `divide_no_nan`, which returns float32 for float64 on
  PyTorch) and divides by ``max(count, 1)``.

Every subclass implements `call(y_true, y_pred)` returning one loss value per
sample, usually by calling the pure function of the same family.
"""

import keras
import numpy as np
from keras import backend
from keras import ops

from safeloss import ops as safe_ops

__all__ = [
    "REDUCTIONS",
    "SafeLoss",
    "concrete_value",
    "integer_labels",
    "is_traced",
    "reduce_losses",
]

REDUCTIONS = (
    "sum_over_batch_size",
    "sum",
    "mean",
    "mean_with_sample_weight",
    "none",
    None,
)


def is_traced(x):
    """Whether `x` is symbolic (traced by `tf.function`, `jax.jit`, Keras).

    Values of traced tensors are unknown while the function is built, so
    value checks (label ranges, integrality) can only run when this is False.
    """
    if isinstance(x, keras.KerasTensor):
        return True
    name = backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.is_tensor(x) and not hasattr(x, "numpy")
    if name == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)
    if name == "torch":
        import torch

        return torch.compiler.is_compiling()
    return False


def concrete_value(x):
    """`x` as a NumPy array when its values are known now, else ``None``."""
    if is_traced(x):
        return None
    return ops.convert_to_numpy(x)


def _is_float(dtype):
    return backend.standardize_dtype(dtype).startswith(("float", "bfloat"))


def integer_labels(y_true, argument="y_true"):
    """Labels as int32, checking that floating labels are whole numbers.

    Raises:
        ValueError: `y_true` is None, boolean, or has non-integer values
            (checked where values are known: eager execution).
    """
    if y_true is None:
        raise ValueError(
            f"`{argument}` is required: expected integer class labels, "
            "received None."
        )
    y_true = ops.convert_to_tensor(y_true)
    dtype = backend.standardize_dtype(y_true.dtype)
    if dtype == "bool":
        raise ValueError(
            f"`{argument}` must hold integer class labels, received dtype=bool."
        )
    if _is_float(dtype):
        values = concrete_value(y_true)
        if values is not None:
            values = values.astype(np.float64)
            bad = values[(values != np.round(values)) | ~np.isfinite(values)]
            if bad.size:
                raise ValueError(
                    f"`{argument}` must hold integer class labels; received "
                    f"dtype={dtype} with non-integer value {bad.flat[0]!r}."
                )
        y_true = ops.round(y_true)
    return ops.cast(y_true, "int32")


def reduce_losses(values, sample_weight=None, reduction="sum_over_batch_size"):
    """Weights and reduces per-sample losses, keeping their dtype.

    Args:
        values: per-sample losses, shape (batch,) (any rank is accepted).
        sample_weight: None, a scalar, or a tensor of the same shape as
            `values` (a trailing axis of length 1 is squeezed).
        reduction: ``"sum_over_batch_size"``/``"mean"`` (sum of weighted
            values over their number), ``"sum"``,
            ``"mean_with_sample_weight"`` (sum over the sum of the weights),
            ``"none"``/None (the weighted values).

    Returns:
        A scalar, or `values`' shape for no reduction. An empty batch gives 0.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid `reduction`: expected one of {REDUCTIONS}, received "
            f"{reduction!r}."
        )
    dtype = safe_ops.dtype_name(values)
    if sample_weight is not None:
        sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), dtype)
        sample_weight = _match_weight_shape(sample_weight, values)
        values = values * sample_weight
    if reduction in ("none", None):
        return values
    # float16 sums overflow long before their mean would: sum in float32 and
    # saturate the result back.
    inner = safe_ops.compute_dtype(dtype)
    total = ops.sum(ops.cast(values, inner))
    if reduction == "sum":
        return safe_ops.saturating_cast(total, dtype)
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        weights = ops.broadcast_to(ops.cast(sample_weight, inner), ops.shape(values))
        loss = safe_ops.safe_divide(total, ops.sum(weights))
    else:
        # The count is read at run time: under a compiled `fit` the batch
        # dimension is unknown when the graph is built.
        count = ops.cast(ops.size(values), inner)
        loss = total / ops.maximum(count, ops.convert_to_tensor(1, inner))
    loss = safe_ops.saturating_cast(loss, dtype)
    return _scale_for_distribution(loss)


def _match_weight_shape(sample_weight, values):
    weight_shape = tuple(sample_weight.shape)
    value_shape = tuple(values.shape)
    if weight_shape == value_shape or weight_shape == ():
        return sample_weight
    if weight_shape == value_shape + (1,):
        return ops.squeeze(sample_weight, axis=-1)
    raise ValueError(
        f"`sample_weight` must be a scalar or have shape {value_shape} (one "
        f"weight per sample), received shape {weight_shape}."
    )


def _scale_for_distribution(loss):
    """Divides by the replica count under a `tf.distribute` strategy.

    Keras sums the per-replica losses it gets from `compute_loss`, so every
    loss must be pre-divided, as `keras.losses.Loss` does.
    """
    if backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        loss = loss * ops.convert_to_tensor(1.0 / replicas, loss.dtype)
    return loss


class SafeLoss(keras.losses.Loss):
    """Base class of the safeloss losses.

    Subclasses set `label_kind` to ``"integer"`` (class labels, kept as
    int32), ``"float"`` (targets in the loss dtype) or ``"ignored"`` (`y_true`
    is not used and may be None), and implement `call(y_true, y_pred)`
    returning one value per sample.

    Args:
        reduction: how per-sample losses are combined:
            ``"sum_over_batch_size"`` (default) and ``"mean"`` divide the sum
            of the weighted losses by their number; ``"sum"`` sums them;
            ``"mean_with_sample_weight"`` divides by the sum of the weights;
            ``"none"`` or None return the weighted per-sample losses.
        name: the loss name; defaults to the snake-cased class name.
        dtype: the dtype the loss computes in and returns (or a
            `keras.DTypePolicy`, whose compute dtype is used). Defaults to
            `keras.backend.floatx()`, float32, also under the
            ``mixed_float16`` and ``mixed_bfloat16`` policies: model outputs
            in float16 are cast up before the loss. Set ``dtype="float16"``
            to compute in float16 (safeloss computes float16 and bfloat16 in
            float32 internally and returns them in their own dtype).
    """

    label_kind = "integer"

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"Invalid `reduction`: expected one of {REDUCTIONS}, received "
                f"{reduction!r}."
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        if not _is_float(y_pred.dtype):
            raise ValueError(
                "`y_pred` must be floating-point, received dtype="
                f"{backend.standardize_dtype(y_pred.dtype)}."
            )
        y_pred = ops.cast(y_pred, self.dtype)
        y_true = self._convert_labels(y_true)
        losses = self.call(y_true, y_pred)
        return reduce_losses(
            ops.cast(losses, self.dtype), sample_weight, self.reduction
        )

    def _convert_labels(self, y_true):
        if self.label_kind == "ignored":
            return None
        if self.label_kind == "integer":
            return integer_labels(y_true)
        if y_true is None:
            raise ValueError(
                "`y_true` is required: expected targets, received None."
            )
        return ops.cast(ops.convert_to_tensor(y_true), self.dtype)

    def get_config(self):
        config = super().get_config()
        config["dtype"] = self._dtype_policy.name
        return config
