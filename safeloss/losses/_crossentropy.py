"""Cross-entropy losses with Keras' signatures that stay finite everywhere.

Five pure functions and their `SafeLoss` classes, each with exactly the
signature of the Keras 3.15 loss of the same name, so that switching is a
one-line import change:

* `categorical_crossentropy` / `CategoricalCrossentropy`
* `sparse_categorical_crossentropy` / `SparseCategoricalCrossentropy`
* `binary_crossentropy` / `BinaryCrossentropy`
* `categorical_focal_crossentropy` / `CategoricalFocalCrossentropy`
* `binary_focal_crossentropy` / `BinaryFocalCrossentropy`

Conventions shared by all of them (the `Numerics:` notes refer to these):

* **Logits** (``from_logits=True``) are first limited to ``[-B, B]`` with
  ``B = safe_ops.logit_bound(dtype)`` (a quarter of the input dtype's
  largest value: 16376 in float16, 8.5e37 in float32 and bfloat16, 4.5e307
  in float64) by a `where`-based clamp: +-inf become +-B, so a +inf logit on the
  true class gives a loss of 0 and -inf masking logits with zero targets
  give no NaN. Every logit up to a tenth of the dtype's largest value is
  left unchanged and handled exactly. The log-softmax is max-shifted
  (``x - m - log(sum(exp(x - m)))``, ``m`` under `stop_gradient`) and the
  log-sigmoid is ``-(relu(-x) + log1p(exp(-|x|)))``: no `exp` of a positive
  argument anywhere.
* **Probabilities** (``from_logits=False``) need not be normalised:
  categorical rows are divided by their sum, as in Keras. Negative values
  are not probabilities: they count as 0 (with a zero gradient), so linear
  outputs work. A row whose sum is below the input dtype's smallest normal
  number ("tiny": all zeros, e.g. a dead ReLU layer, or subnormals, which
  some devices flush to zero) is read as the uniform distribution, with a
  zero gradient; Keras divides 0 by 0 there.
  Binary probabilities are limited to ``[0, 1]``.
* **Logarithms of probabilities** are floored at tiny of the input dtype:
  a probability of exactly 0 on a target class costs ``-log(tiny)`` (9.70
  in float16, 87.3 in float32 and bfloat16, 708.4 in float64) with a zero
  gradient, instead of inf. Every probability at or above tiny gets its
  exact logarithm and gradient (Keras clips at 1e-7, which changes values
  below it and zeroes the gradient of saturated predictions).
* **Dtypes**: float16 and bfloat16 are computed in float32 and returned in
  their own dtype, saturating at its largest value.
"""

import math

import keras
from keras import ops

from safeloss import ops as safe_ops
from safeloss.losses._base import SafeLoss, concrete_value, integer_labels

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "sparse_categorical_crossentropy",
]


# ---------------------------------------------------------------------------
# Argument checks and shape handling


def _check_axis(axis, rank):
    """`axis` as a non-negative int, or a ValueError naming it."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(
            f"`axis` must be an int, received axis={axis!r} of type "
            f"{type(axis).__name__}."
        )
    if not -rank <= axis < rank:
        raise ValueError(
            f"`axis` must be in [{-rank}, {rank}) for `y_pred` of rank "
            f"{rank}, received axis={axis}."
        )
    return axis % rank


def _check_label_smoothing(label_smoothing):
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(
            "`label_smoothing` must be in [0, 1], received "
            f"label_smoothing={label_smoothing!r}."
        )


def _float_tensor(y_pred):
    """`y_pred` in its compute dtype, with its own dtype; rejects non-floats."""
    y_pred = ops.convert_to_tensor(y_pred)
    dtype = safe_ops.dtype_name(y_pred)
    if not dtype.startswith(("float", "bfloat")):
        raise ValueError(
            f"`y_pred` must be floating-point, received dtype={dtype}."
        )
    if len(y_pred.shape) == 0:
        raise ValueError(
            "`y_pred` must have at least one axis, received a scalar."
        )
    return ops.cast(y_pred, safe_ops.compute_dtype(dtype)), dtype


def _dense_targets(y_true, y_pred):
    """`y_true` cast to `y_pred`'s dtype, brought to its rank as Keras does
    (a trailing axis of length 1 is squeezed or added), shapes checked."""
    if y_true is None:
        raise ValueError("`y_true` is required: expected targets, received None.")
    y_true = ops.convert_to_tensor(y_true)
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    elif pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        y_true = ops.expand_dims(y_true, axis=-1)
    mismatch = len(y_true.shape) != pred_rank or any(
        a is not None and b is not None and a != b
        for a, b in zip(y_true.shape, y_pred.shape)
    )
    if mismatch:
        raise ValueError(
            "`y_true` must have the shape of `y_pred`: expected "
            f"{tuple(y_pred.shape)}, received {tuple(y_true.shape)}."
        )
    return ops.cast(y_true, y_pred.dtype)


def _num_classes(y_pred, axis):
    num_classes = y_pred.shape[axis]
    if num_classes is None:
        raise ValueError(
            "`y_pred` must have a known number of classes on axis "
            f"{axis}, received shape {tuple(y_pred.shape)}."
        )
    return int(num_classes)


def _smooth_categorical(y_true, label_smoothing, num_classes):
    if not label_smoothing:
        return y_true
    return y_true * (1.0 - label_smoothing) + label_smoothing / num_classes


def _smooth_binary(y_true, label_smoothing):
    if not label_smoothing:
        return y_true
    return y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing


# ---------------------------------------------------------------------------
# Log-probabilities


def _floored_log(x, floor):
    """``log(max(x, floor))`` with a zero gradient below `floor`.

    The `where` feeds `log` a value at or above `floor` on both branches, so
    neither pass sees ``log(0) = -inf`` (whose gradient multiplies into NaN).
    """
    return ops.log(ops.where(x >= floor, x, ops.convert_to_tensor(floor, x.dtype)))


def _clip_logits(x, dtype):
    """`x` (in its compute dtype) limited to ``+-logit_bound(dtype)``.

    The bound is the input dtype's, not the compute dtype's: log-probabilities
    of float16 logits then stay within float16's range, and so does their
    gradient with respect to the targets.
    """
    bound = safe_ops.logit_bound(dtype)
    return safe_ops.clamp(x, -bound, bound)


def _log_softmax(logits, axis, dtype):
    """Max-shifted log-softmax of logits of input dtype `dtype`.

    After `_clip_logits` every entry is finite, so the row maximum is finite
    and ``x - m`` is never ``inf - inf``; ``x - m`` is at most 0, so `exp`
    cannot overflow, and the sum is at least 1, so its log is safe.
    """
    x = _clip_logits(logits, dtype)
    shifted = x - ops.stop_gradient(ops.max(x, axis=axis, keepdims=True))
    return shifted - ops.log(ops.sum(ops.exp(shifted), axis=axis, keepdims=True))


def _log_normalised(probs, axis, tiny, num_classes):
    """``log(p / sum(p))`` for non-negative, unnormalised scores.

    Negative scores count as 0. Rows summing below `tiny` are the uniform
    distribution (``-log(num_classes)`` everywhere, zero gradient).
    Logarithms of entries below `tiny` are floored at ``log(tiny)``.

    The row sum is computed twice in one pass, as is and scaled by a power of
    two ``2**-k >= 1 / num_classes``: the plain sum is exactly rounded but
    overflows when entries approach the dtype's largest value; the scaled
    one cannot overflow and takes over there. Both sums read the same input,
    so XLA fuses them into one reduction (a max-scaling would need a second
    pass over the row).
    """
    dtype = safe_ops.dtype_name(probs)
    # `>=`, not `>`: an exact 0 keeps its derivative 1 / sum, the exact one.
    p = ops.where(probs >= 0, probs, ops.zeros_like(probs))
    shift = max(math.ceil(math.log2(num_classes)), 0)
    total = ops.sum(p, axis=axis, keepdims=True)
    scaled_total = ops.sum(p * (2.0**-shift), axis=axis, keepdims=True)
    big = safe_ops.largest(dtype)
    one = ops.ones_like(total)
    nonzero = total >= tiny
    fits = total <= big
    log_total = ops.where(
        fits,
        ops.log(ops.where(ops.logical_and(nonzero, fits), total, one)),
        ops.log(ops.where(fits, one, scaled_total)) + shift * math.log(2.0),
    )
    log_p = _floored_log(p, tiny) - log_total
    uniform = ops.convert_to_tensor(-math.log(num_classes), dtype)
    return ops.where(nonzero, log_p, uniform)


def _categorical_log_probs(y_pred, from_logits, axis):
    """(log-probabilities in the compute dtype, input dtype, class count)."""
    x, dtype = _float_tensor(y_pred)
    axis = _check_axis(axis, len(x.shape))
    num_classes = _num_classes(x, axis)
    if from_logits:
        log_p = _log_softmax(x, axis, dtype)
    else:
        log_p = _log_normalised(x, axis, safe_ops.tiny(dtype), num_classes)
    return log_p, dtype, axis, num_classes


def _sigmoid_parts(x):
    """``(relu(x), relu(-x), log1p(exp(-|x|)))`` of clipped logits `x`.

    ``log sigmoid(x) = -(relu(-x) + tail)`` and ``log(1 - sigmoid(x)) =
    -(relu(x) + tail)``; `exp` only sees non-positive numbers. All three
    pieces take the same side of the kink at 0 (``x >= 0``), so their
    one-sided derivatives add up to the true one there; `ops.abs` and a
    ``x > 0`` relu would each take derivative 0 at 0 and lose sigmoid(0).
    """
    zero = ops.zeros_like(x)
    non_negative = x >= 0
    relu_x = ops.where(non_negative, x, zero)
    relu_minus_x = ops.where(non_negative, zero, -x)
    tail = ops.log1p(ops.exp(ops.where(non_negative, -x, x)))
    return relu_x, relu_minus_x, tail


def _binary_log_probs(x, from_logits, dtype):
    """``(log p, log(1 - p))`` elementwise, from logits or probabilities."""
    if from_logits:
        relu_x, relu_minus_x, tail = _sigmoid_parts(_clip_logits(x, dtype))
        return -(relu_minus_x + tail), -(relu_x + tail)
    tiny = safe_ops.tiny(dtype)
    p = safe_ops.clamp(x, 0.0, 1.0)
    return _floored_log(p, tiny), _floored_log(1.0 - p, tiny)


# ---------------------------------------------------------------------------
# Pure functions


def categorical_crossentropy(
    y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1
):
    """Categorical cross-entropy, finite for any finite or infinite input.

    Math: ``-sum_i y_i log p_i`` along `axis`, with ``p = softmax(y_pred)``
    for logits and ``p = y_pred / sum(y_pred)`` for probabilities. Label
    smoothing replaces ``y`` by ``y (1 - s) + s / K`` for K classes.

    Args:
        y_true: targets of `y_pred`'s shape (one-hot or soft).
        y_pred: logits, or non-negative scores (need not be normalised).
        from_logits: whether `y_pred` holds logits.
        label_smoothing: float in [0, 1].
        axis: the class axis.

    Returns:
        The loss per sample: `y_pred`'s shape without `axis`, in its dtype.

    Example:
        >>> import numpy as np, safeloss
        >>> y = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
        >>> relu_out = np.array([[0.0, 0.0], [3.0, 1.0]], "float32")
        >>> np.round(np.asarray(safeloss.categorical_crossentropy(y, relu_out)), 4)
        array([0.6931, 0.2877], dtype=float32)

    Numerics: see the module docstring. The all-zero first row above is
    read as uniform (``log 2``) where Keras returns NaN. A +inf logit on the
    true class gives 0; -inf logits with zero targets contribute nothing.
    Targets summing to more than 1 may push the loss past the dtype's range:
    it saturates at the largest value.
    """
    _check_label_smoothing(label_smoothing)
    log_p, dtype, axis, num_classes = _categorical_log_probs(
        y_pred, from_logits, axis
    )
    y = _dense_targets(y_true, log_p)
    y = _smooth_categorical(y, label_smoothing, num_classes)
    return safe_ops.saturating_cast(-ops.sum(y * log_p, axis=axis), dtype)


def _class_labels(y_true, y_pred, axis, num_classes, ignore_class):
    """Integer labels of shape `y_pred` without `axis`, range-checked where
    their values are known."""
    labels = integer_labels(y_true)
    if len(labels.shape) == len(y_pred.shape) and labels.shape[axis] == 1:
        labels = ops.squeeze(labels, axis=axis)
    expected = tuple(d for i, d in enumerate(y_pred.shape) if i != axis)
    mismatch = len(labels.shape) != len(expected) or any(
        a is not None and b is not None and a != b
        for a, b in zip(labels.shape, expected)
    )
    if mismatch:
        raise ValueError(
            "`y_true` must hold one class label per sample: expected shape "
            f"{expected} (or with a trailing 1), received "
            f"{tuple(labels.shape)}."
        )
    values = concrete_value(labels)
    if values is not None:
        outside = (values < 0) | (values >= num_classes)
        if ignore_class is not None:
            outside &= values != ignore_class
        if outside.any():
            raise ValueError(
                f"`y_true` holds the label {int(values[outside].flat[0])}, "
                f"outside the {num_classes} classes of `y_pred` (expected "
                f"0 to {num_classes - 1}"
                + ("" if ignore_class is None else f", or {ignore_class}")
                + ")."
            )
    return labels


def sparse_categorical_crossentropy(
    y_true, y_pred, from_logits=False, ignore_class=None, axis=-1
):
    """Categorical cross-entropy with integer class labels.

    Math: ``-log p[label]``, with `p` as in `categorical_crossentropy`;
    0 where the label equals `ignore_class`.

    Args:
        y_true: integer labels (integer-valued floats accepted), of
            `y_pred`'s shape without `axis`, or with length 1 there.
        y_pred: logits, or non-negative scores (need not be normalised).
        from_logits: whether `y_pred` holds logits.
        ignore_class: optional label whose samples get a loss of 0 and no
            gradient (e.g. -1 or 255 for "void" pixels).
        axis: the class axis.

    Returns:
        The loss per sample: `y_pred`'s shape without `axis`, in its dtype.

    Raises:
        ValueError: a label outside ``[0, num_classes)`` (other than
            `ignore_class`), where values are known: eager execution
            (including PyTorch `fit`). Under `tf.function`/`jax.jit`
            (TensorFlow and JAX `fit`) values cannot be checked; there such
            a label matches no class, so its sample gets a loss of 0 and no
            gradient, like an ignored one, instead of the backend's error,
            NaN or silently clamped index.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> relu_out = np.array([[0.0, 0.0], [3.0, 1.0]], "float32")
        >>> loss = safeloss.sparse_categorical_crossentropy(np.array([1, 0]), relu_out)
        >>> np.round(np.asarray(loss), 4)  # the zero row reads as uniform
        array([0.6931, 0.2877], dtype=float32)

    Numerics: see the module docstring. The true class is picked by
    comparing the label with each class index (a mask, no gather), so no
    label value can index out of bounds.
    """
    log_p, dtype, axis, num_classes = _categorical_log_probs(
        y_pred, from_logits, axis
    )
    labels = _class_labels(y_true, log_p, axis, num_classes, ignore_class)
    class_shape = [1] * len(log_p.shape)
    class_shape[axis] = num_classes
    classes = ops.reshape(ops.arange(num_classes, dtype="int32"), class_shape)
    one_hot = ops.equal(ops.expand_dims(labels, axis), classes)
    loss = -ops.sum(ops.where(one_hot, log_p, ops.zeros_like(log_p)), axis=axis)
    if ignore_class is not None:
        loss = ops.where(ops.equal(labels, ignore_class), ops.zeros_like(loss), loss)
    return safe_ops.saturating_cast(loss, dtype)


def binary_crossentropy(
    y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1
):
    """Binary cross-entropy, averaged along `axis`.

    Math: ``-(y log p + (1 - y) log(1 - p))`` elementwise, ``p =
    sigmoid(y_pred)`` for logits, then the mean along `axis`. Label
    smoothing replaces ``y`` by ``y (1 - s) + s / 2``.

    For logits this is ``relu(x) - x y + log1p(exp(-|x|))``: exact for every
    clipped logit, 0 for a +inf logit with target 1.

    Args:
        y_true: targets in [0, 1] of `y_pred`'s shape (a trailing axis of
            length 1 may be missing on either side).
        y_pred: logits, or probabilities (limited to [0, 1]).
        from_logits: whether `y_pred` holds logits.
        label_smoothing: float in [0, 1].
        axis: the axis to average over.

    Returns:
        `y_pred`'s shape without `axis`, in its dtype.

    Example:
        >>> import numpy as np, safeloss
        >>> y = np.array([[1.0], [0.0]], "float32")
        >>> logits = np.array([[np.inf], [-np.inf]], "float32")
        >>> np.asarray(safeloss.binary_crossentropy(y, logits, from_logits=True))
        array([0., 0.], dtype=float32)

    Numerics: see the module docstring.
    """
    _check_label_smoothing(label_smoothing)
    x, dtype = _float_tensor(y_pred)
    axis = _check_axis(axis, len(x.shape))
    y = _smooth_binary(_dense_targets(y_true, x), label_smoothing)
    if from_logits:
        x = _clip_logits(x, dtype)
        relu_x, _, tail = _sigmoid_parts(x)
        elementwise = relu_x - x * y + tail
    else:
        log_p, log_q = _binary_log_probs(x, False, dtype)
        elementwise = -(y * log_p + (1.0 - y) * log_q)
    return safe_ops.saturating_cast(safe_ops.mean(elementwise, axis=axis), dtype)


def _check_gamma(gamma):
    if float(gamma) < 0:
        raise ValueError(f"`gamma` must be non-negative, received gamma={gamma!r}.")


def _class_weights(alpha, dtype, rank, axis, num_classes):
    """`alpha` (a float or one weight per class) shaped to broadcast."""
    if isinstance(alpha, (list, tuple)):
        if len(alpha) != num_classes:
            raise ValueError(
                f"`alpha` must be a float or one weight per class: expected "
                f"{num_classes} values, received {len(alpha)}."
            )
        shape = [1] * rank
        shape[axis] = num_classes
        return ops.reshape(ops.convert_to_tensor(list(alpha), dtype), shape)
    return ops.convert_to_tensor(float(alpha), dtype)


def categorical_focal_crossentropy(
    y_true,
    y_pred,
    alpha=0.25,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    axis=-1,
):
    """Focal loss for multi-class targets (Lin et al., 2017), in log space.

    Math: ``-sum_i alpha_i (1 - p_i)**gamma y_i log p_i`` along `axis`, with
    `p` and label smoothing as in `categorical_crossentropy`.

    Args:
        y_true: targets of `y_pred`'s shape (one-hot or soft).
        y_pred: logits, or non-negative scores (need not be normalised).
        alpha: a float, or a list of one weight per class.
        gamma: focusing parameter, >= 0 (0 is the plain cross-entropy).
        from_logits: whether `y_pred` holds logits.
        label_smoothing: float in [0, 1].
        axis: the class axis.

    Returns:
        The loss per sample: `y_pred`'s shape without `axis`, in its dtype.

    References:
        Lin, Goyal, Girshick, He, Dollar. Focal Loss for Dense Object
        Detection. ICCV 2017. https://arxiv.org/abs/1708.02002

    Numerics: the modulating factor is ``exp(gamma * log(1 - p))`` with
    ``log(1 - p) = log(-expm1(log p))``, accurate as ``p -> 1``, and the
    logarithm floored at tiny: at saturation (``p == 1`` in the dtype) it
    is ``tiny**gamma`` with a zero gradient, where ``(1 - p)**gamma`` with
    ``gamma < 1`` has an infinite slope and Keras' gradient is NaN. Other
    edges as in `categorical_crossentropy`.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> y = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
        >>> relu_out = np.array([[0.0, 0.0], [3.0, 1.0]], "float32")
        >>> np.round(np.asarray(safeloss.categorical_focal_crossentropy(y, relu_out)), 4)
        array([0.0433, 0.0045], dtype=float32)
    """
    _check_label_smoothing(label_smoothing)
    _check_gamma(gamma)
    log_p, dtype, axis, num_classes = _categorical_log_probs(
        y_pred, from_logits, axis
    )
    y = _dense_targets(y_true, log_p)
    y = _smooth_categorical(y, label_smoothing, num_classes)
    compute = safe_ops.dtype_name(log_p)
    log_rest = _floored_log(-ops.expm1(log_p), safe_ops.tiny(dtype))
    modulating = ops.exp(float(gamma) * log_rest)
    weights = _class_weights(alpha, compute, len(log_p.shape), axis, num_classes)
    loss = -ops.sum(weights * modulating * y * log_p, axis=axis)
    return safe_ops.saturating_cast(loss, dtype)


def binary_focal_crossentropy(
    y_true,
    y_pred,
    apply_class_balancing=False,
    alpha=0.25,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    axis=-1,
):
    """Binary focal loss (Lin et al., 2017), averaged along `axis`.

    Math: ``w (1 - p_t)**gamma bce`` elementwise with ``bce`` the binary
    cross-entropy, ``1 - p_t = y (1 - p) + (1 - y) p`` and ``w = y alpha +
    (1 - y)(1 - alpha)`` if `apply_class_balancing` else 1; then the mean
    along `axis`.

    Args:
        y_true: targets in [0, 1] of `y_pred`'s shape.
        y_pred: logits, or probabilities (limited to [0, 1]).
        apply_class_balancing: weight the classes by `alpha`, `1 - alpha`.
        alpha: weight of class 1 when balancing.
        gamma: focusing parameter, >= 0.
        from_logits: whether `y_pred` holds logits.
        label_smoothing: float in [0, 1].
        axis: the axis to average over.

    Returns:
        `y_pred`'s shape without `axis`, in its dtype.

    References:
        Lin, Goyal, Girshick, He, Dollar. Focal Loss for Dense Object
        Detection. ICCV 2017. https://arxiv.org/abs/1708.02002

    Numerics: ``log p`` and ``log(1 - p)`` come from the log-sigmoid (or
    floored logarithms), and ``1 - p_t`` is a sum of two non-negative terms
    ``y exp(log(1 - p)) + (1 - y) exp(log p)``: no cancellation as ``p -> 1``
    (``1 - sigmoid(x)`` is 0 in float32 above x = 17; ``exp(-softplus(x))``
    is not). The factor is ``exp(gamma * log(1 - p_t))`` with the logarithm
    floored at tiny, so ``gamma < 1`` has no infinite slope at saturation.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> y = np.array([[1.0], [0.0]], "float32")
        >>> logits = np.array([[0.0], [30.0]], "float32")
        >>> loss = safeloss.binary_focal_crossentropy(y, logits, from_logits=True)
        >>> np.round(np.asarray(loss), 4)
        array([ 0.1733, 30.    ], dtype=float32)
    """
    _check_label_smoothing(label_smoothing)
    _check_gamma(gamma)
    x, dtype = _float_tensor(y_pred)
    axis = _check_axis(axis, len(x.shape))
    y = _smooth_binary(_dense_targets(y_true, x), label_smoothing)
    tiny = safe_ops.tiny(dtype)
    log_p, log_q = _binary_log_probs(x, from_logits, dtype)
    bce = -(y * log_p + (1.0 - y) * log_q)
    rest = y * ops.exp(log_q) + (1.0 - y) * ops.exp(log_p)
    elementwise = ops.exp(float(gamma) * _floored_log(rest, tiny)) * bce
    if apply_class_balancing:
        elementwise = (y * alpha + (1.0 - y) * (1.0 - alpha)) * elementwise
    return safe_ops.saturating_cast(safe_ops.mean(elementwise, axis=axis), dtype)


# ---------------------------------------------------------------------------
# Keras classes


class _DenseTargetLoss(SafeLoss):
    """Shared by the losses whose targets have `y_pred`'s shape."""

    label_kind = "float"


@keras.saving.register_keras_serializable(package="safeloss")
class CategoricalCrossentropy(_DenseTargetLoss):
    """`categorical_crossentropy` as a Keras loss; Keras' signature.

    A drop-in for `keras.losses.CategoricalCrossentropy` that gives a finite
    loss and gradient for ReLU or linear outputs, all-zero rows, exact 0
    and 1, and infinite logits. Reduction and dtype: see `SafeLoss`.

    Example:
        >>> import keras, safeloss
        >>> model = keras.Sequential([keras.Input((4,)),
        ...                           keras.layers.Dense(3, activation="relu")])
        >>> model.compile("adam", loss=safeloss.CategoricalCrossentropy())
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        _check_label_smoothing(label_smoothing)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def call(self, y_true, y_pred):
        return categorical_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class SparseCategoricalCrossentropy(SafeLoss):
    """`sparse_categorical_crossentropy` as a Keras loss; Keras' signature.

    Labels stay integers (no float16 rounding of large class ids). With
    `ignore_class`, ``"sum_over_batch_size"``/``"mean"`` average over the
    samples that are not ignored, as Keras does; a batch with none gives 0.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> logits = np.array([[np.inf, 0.0], [-np.inf, 0.0]], "float32")
        >>> loss = safeloss.SparseCategoricalCrossentropy(from_logits=True)
        >>> float(loss(np.array([0, 1]), logits))
        0.0
    """

    label_kind = "integer"

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        reduction="sum_over_batch_size",
        axis=-1,
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def __call__(self, y_true, y_pred, sample_weight=None):
        if self.ignore_class is not None and self.reduction in (
            "sum_over_batch_size",
            "mean",
        ):
            sample_weight = self._valid_sample_weight(y_true, y_pred, sample_weight)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def _valid_sample_weight(self, y_true, y_pred, sample_weight):
        """Weights ``count / valid_count`` on valid samples, 0 elsewhere, so
        the mean over all samples is the mean over the valid ones."""
        y_pred = ops.convert_to_tensor(y_pred)
        axis = _check_axis(self.axis, len(y_pred.shape))
        labels = integer_labels(y_true)
        if len(labels.shape) == len(y_pred.shape) and labels.shape[axis] == 1:
            labels = ops.squeeze(labels, axis=axis)
        valid = ops.cast(ops.not_equal(labels, self.ignore_class), self.dtype)
        count = ops.cast(ops.size(valid), self.dtype)
        valid_count = ops.sum(valid)
        one = ops.ones_like(valid_count)
        weight = valid * count / ops.where(valid_count >= 1, valid_count, one)
        if sample_weight is None:
            return weight
        sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), self.dtype)
        if len(sample_weight.shape) == len(weight.shape) + 1:
            sample_weight = ops.squeeze(sample_weight, axis=-1)
        return weight * sample_weight

    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            ignore_class=self.ignore_class,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            from_logits=self.from_logits,
            ignore_class=self.ignore_class,
            axis=self.axis,
        )
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class BinaryCrossentropy(_DenseTargetLoss):
    """`binary_crossentropy` as a Keras loss; Keras' signature.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> y = np.array([[1.0], [0.0]], "float32")
        >>> logits = np.array([[np.inf], [-np.inf]], "float32")
        >>> float(safeloss.BinaryCrossentropy(from_logits=True)(y, logits))
        0.0
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        _check_label_smoothing(label_smoothing)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def call(self, y_true, y_pred):
        return binary_crossentropy(
            y_true,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class CategoricalFocalCrossentropy(_DenseTargetLoss):
    """`categorical_focal_crossentropy` as a Keras loss; Keras' signature.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> y = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
        >>> relu_out = np.array([[0.0, 0.0], [3.0, 1.0]], "float32")
        >>> round(float(safeloss.CategoricalFocalCrossentropy()(y, relu_out)), 4)
        0.0239
    """

    def __init__(
        self,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_focal_crossentropy",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        _check_label_smoothing(label_smoothing)
        _check_gamma(gamma)
        self.alpha = alpha
        self.gamma = gamma
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def call(self, y_true, y_pred):
        return categorical_focal_crossentropy(
            y_true,
            y_pred,
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class BinaryFocalCrossentropy(_DenseTargetLoss):
    """`binary_focal_crossentropy` as a Keras loss; Keras' signature.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> y = np.array([[1.0]], "float32")
        >>> logits = np.array([[np.inf]], "float32")
        >>> loss = safeloss.BinaryFocalCrossentropy(gamma=0.5, from_logits=True)
        >>> float(loss(y, logits))  # Keras: NaN
        0.0
    """

    def __init__(
        self,
        apply_class_balancing=False,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_focal_crossentropy",
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        _check_label_smoothing(label_smoothing)
        _check_gamma(gamma)
        self.apply_class_balancing = apply_class_balancing
        self.alpha = alpha
        self.gamma = gamma
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def call(self, y_true, y_pred):
        return binary_focal_crossentropy(
            y_true,
            y_pred,
            apply_class_balancing=self.apply_class_balancing,
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            apply_class_balancing=self.apply_class_balancing,
            alpha=self.alpha,
            gamma=self.gamma,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
            axis=self.axis,
        )
        return config
