"""InfoNCE losses: NT-Xent (SimCLR) and supervised contrastive (SupCon).

Both score every embedding (the anchor) against every other one with cosine
similarity over a temperature, ``s_ik = cos(x_i, x_k) / T``, and compare its
positives with the softmax over all the other rows:

    loss_i = log(sum_{k != i} exp(s_ik)) - mean_{p in P(i)} s_ip

NT-Xent has one positive per anchor (the other view of the same example);
SupCon has every other row with the anchor's label.

Numerics shared by both (in `_info_nce`):

* Low temperatures: at T = 0.01 the logits reach 100, and ``exp(100)``
  overflows float16 and float32 alike. Logits are computed in float32 for
  float16 and bfloat16 inputs, and the softmax is shifted by each row's
  largest logit, so ``exp`` only sees values <= 0.
* Self-similarity is masked with a finite sentinel, ``-2 B`` with
  ``B = logit_bound(dtype)``, not ``-inf``: ``-inf - -inf`` is NaN on a row
  with no other entry, and ``exp(sentinel - max)`` is exactly 0 otherwise.
* The positive term is taken as ``mean_p (m_i - s_ip)`` with ``m_i`` the
  row's largest logit: each difference is exact where the positive is the
  largest logit, so a loss near 0 is not the cancellation of two numbers
  near ``1 / T``.
* Anchors without positives (a SupCon label seen once) give 0 with a zero
  gradient, never ``0 / 0``.
* Zero embeddings normalise to the zero vector (`ops.l2_normalize`): their
  cosine with every row is 0.
* The gradient is written by hand, ``dL/du = (W + W^T) u / T`` with
  ``W_ik = g_i (softmax_ik - y_ik)``, and recomputes the logits in the
  backward pass: an eager gradient tape then keeps no batch x batch tensor
  between the passes (an autodiff version kept several: 2.8 GiB at batch
  4096 on TensorFlow eager). Where the exact input gradient exceeds the dtype's range
  (rows near the smallest normal number at low temperature) it saturates at
  the dtype's largest value instead of becoming inf.
"""

import math
import numbers

import keras
from keras import ops

from safeloss import ops as safe_ops
from safeloss.losses._base import SafeLoss, integer_labels, reduce_losses

__all__ = ["NTXentLoss", "SupConLoss", "ntxent_loss", "supcon_loss"]

_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


def _check_temperature(temperature):
    """The temperature as a float; a ValueError unless finite and positive."""
    valid = isinstance(temperature, numbers.Real) and not isinstance(
        temperature, bool
    )
    if not valid or not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            "`temperature` must be a finite positive number, received "
            f"{temperature!r}."
        )
    return float(temperature)


def _inverse_temperature(temperature, work_dtype):
    """``1 / T``, checked to keep the logits within `logit_bound`."""
    inverse = 1.0 / _check_temperature(temperature)
    bound = safe_ops.logit_bound(work_dtype)
    if inverse > bound:
        raise ValueError(
            f"`temperature` must be at least {1.0 / bound:.3g} in "
            f"{work_dtype} (1 / temperature above {bound:.3g} overflows the "
            f"logits), received {temperature!r}."
        )
    return inverse


def _floating(x, argument, rank, shape_text):
    x = ops.convert_to_tensor(x)
    dtype = safe_ops.dtype_name(x)
    if not dtype.startswith(("float", "bfloat")):
        raise ValueError(
            f"`{argument}` must be a floating-point tensor, received "
            f"dtype={dtype}."
        )
    if len(x.shape) != rank:
        raise ValueError(
            f"`{argument}` must have rank {rank} {shape_text}, received shape "
            f"{tuple(x.shape)}."
        )
    return x


@ops.custom_gradient
def _saturating_gradient(x):
    """The identity, with its gradient limited to the range of x's dtype.

    The exact gradient of a loss at T = 0.01 with respect to a row near the
    smallest normal number is about ``1 / (100 tiny)``, beyond float16's
    (and float32's) largest value: cast back to the input dtype it would be
    inf. Saturating is the closest representable answer.
    """
    big = safe_ops.largest(safe_ops.dtype_name(x))

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        return safe_ops.clamp(ops.cast(upstream, x.dtype), -big, big)

    return x, grad


def _unit_rows(x):
    """Rows of `x` normalised in the compute dtype; zero rows stay zero.

    Entries below the dtype's smallest normal are set to 0 first: CPUs and
    GPUs differ in whether they flush subnormals, and at T = 0.01 a kept
    subnormal beside a row maximum near the smallest normal moves the loss
    by whole units from one backend to another.
    """
    dtype = safe_ops.dtype_name(x)
    x = _saturating_gradient(x)
    x = ops.where(ops.abs(x) >= safe_ops.tiny(dtype), x, ops.zeros_like(x))
    return safe_ops.l2_normalize(x, dtype=safe_ops.compute_dtype(dtype))


def _positive_mask(labels, not_self):
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    return ops.logical_and(same, not_self)


def _info_nce(unit, labels, inverse_temperature):
    """Per-anchor InfoNCE loss of unit rows (n, dim), positives by label.

    Returns a (n,) tensor in `unit`'s dtype: 0 for anchors without
    positives. See the module docstring for the formula and the guards.
    """
    work = safe_ops.dtype_name(unit)
    sentinel = ops.convert_to_tensor(-2.0 * safe_ops.logit_bound(work), work)
    n = ops.shape(unit)[0]

    def masked_logits(u, not_self):
        logits = ops.einsum("id,jd->ij", u, u) * inverse_temperature
        return ops.where(not_self, logits, sentinel)

    def positive_count(positives):
        count = ops.sum(ops.cast(positives, work), axis=1, keepdims=True)
        # ops.maximum would turn float64 into float32 on PyTorch.
        return count, ops.where(count > 0, count, ops.ones_like(count))

    @ops.custom_gradient
    def loss_of_units(u):
        not_self = ops.logical_not(ops.eye(n, dtype="bool"))
        logits = masked_logits(u, not_self)
        row_max = ops.max(logits, axis=1, keepdims=True)
        # At least 1 (the largest entry), so the logarithm is safe.
        total = ops.sum(ops.exp(logits - row_max), axis=1, keepdims=True)
        log_total = ops.log(total)
        positives = _positive_mask(labels, not_self)
        count, divisor = positive_count(positives)
        gap = ops.where(positives, row_max - logits, ops.zeros_like(logits))
        del logits
        gap = ops.sum(gap, axis=1, keepdims=True) / divisor
        has_positive = count > 0
        loss = ops.where(has_positive, log_total + gap, ops.zeros_like(gap))
        log_partition = row_max + log_total

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            cotangent = ops.reshape(ops.cast(upstream, work), (-1, 1))
            cotangent = ops.where(
                has_positive, cotangent, ops.zeros_like(cotangent)
            )
            # The logits are recomputed rather than kept from the forward
            # pass, so no batch x batch tensor lives between the two passes.
            # The diagonal's exp(sentinel - log_partition) is exactly 0 on
            # every row that has a positive (only those rows count).
            not_self = ops.logical_not(ops.eye(n, dtype="bool"))
            weights = ops.exp(masked_logits(u, not_self) - log_partition)
            positives = _positive_mask(labels, not_self)
            weights = weights - ops.where(
                positives, 1.0 / divisor, ops.zeros_like(weights)
            )
            weights = weights * cotangent
            grad_u = ops.einsum("ij,jd->id", weights, u) + ops.einsum(
                "ji,jd->id", weights, u
            )
            # The product overflows only where the exact gradient does.
            return safe_ops.saturating_cast(grad_u * inverse_temperature, work)

        return ops.squeeze(loss, axis=1), grad

    return loss_of_units(unit)


def ntxent_loss(y_true, y_pred, *, temperature=0.1):
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

    Math: the 2N views ``v`` of N examples (two each) are scored with
    ``s_ik = cos(v_i, v_k) / T``; the view ``i`` whose other view is ``p(i)``
    has the term

        l_i = -log(exp(s_ip(i)) / sum_{k != i} exp(s_ik)),

    the other 2N - 2 views being its negatives. An example's loss is the
    mean of its two views' terms, so the mean over examples is the mean over
    all 2N terms, as in the paper.

    Args:
        y_true: ignored (may be None).
        y_pred: floating-point tensor (batch, 2, dim): two views of each
            example, stacked on axis 1.
        temperature: the positive, finite temperature T (keyword-only).

    Returns:
        A (batch,) tensor in `y_pred`'s dtype.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> views = np.array([[[1.0, 0.0], [1.0, 0.0]],
        ...                   [[0.0, 1.0], [0.0, 1.0]]], "float32")
        >>> loss = safeloss.ntxent_loss(None, views, temperature=1.0)
        >>> np.round(np.asarray(loss), 4)  # log(1 + 2 / e)
        array([0.5514, 0.5514], dtype=float32)

    Numerics: float16 and bfloat16 are computed in float32; self-similarity
    is masked by a finite sentinel; zero views have cosine 0 with every
    view; identical views and huge magnitudes are exact; the gradient is
    finite for every finite input (see the module docstring).

    References:
        Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for
        Contrastive Learning of Visual Representations", ICML 2020.
    """
    del y_true
    views = _floating(y_pred, "y_pred", 3, "(batch, 2, dim)")
    if views.shape[1] != 2:
        raise ValueError(
            "`y_pred` must hold two views per example, shape (batch, 2, dim); "
            f"received shape {tuple(views.shape)}."
        )
    dtype = safe_ops.dtype_name(views)
    work = safe_ops.compute_dtype(dtype)
    inverse = _inverse_temperature(temperature, work)
    # Interleaved rows (example 0 view 0, example 0 view 1, ...): the label
    # of a row is its example's index.
    rows = ops.reshape(views, (-1, ops.shape(views)[2]))
    labels = ops.arange(ops.shape(rows)[0], dtype="int32") // 2
    terms = _info_nce(_unit_rows(rows), labels, inverse)
    per_example = ops.sum(ops.reshape(terms, (-1, 2)), axis=1) * 0.5
    return safe_ops.saturating_cast(per_example, dtype)


def _class_labels(y_true, batch):
    labels = integer_labels(y_true)
    if len(labels.shape) == 2 and labels.shape[1] == 1:
        labels = ops.squeeze(labels, axis=1)
    if len(labels.shape) != 1 or (
        batch is not None and labels.shape[0] not in (None, batch)
    ):
        raise ValueError(
            f"`y_true` must have shape ({batch},): one integer label per row "
            f"of `y_pred`; received shape {tuple(labels.shape)}."
        )
    return labels


def supcon_loss(y_true, y_pred, *, temperature=0.1):
    """Supervised contrastive loss (SupCon, the L_out form).

    Math: with ``s_ik = cos(x_i, x_k) / T`` and ``P(i)`` the other rows
    with the label of anchor ``i``,

        l_i = -1/|P(i)| sum_{p in P(i)} log(exp(s_ip) / sum_{k != i} exp(s_ik)),

    the mean over the positives of the log-softmax over all other rows.

    Anchors without positives (a label that appears once in the batch) have
    ``l_i = 0`` with a zero gradient; `SupConLoss` leaves them out of its
    mean.

    Args:
        y_true: integer class labels (batch,) or (batch, 1); integer-valued
            floats are accepted.
        y_pred: floating-point embeddings (batch, dim).
        temperature: the positive, finite temperature T (keyword-only).

    Returns:
        A (batch,) tensor in `y_pred`'s dtype.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], "float32")
        >>> loss = safeloss.supcon_loss(np.array([0, 0, 1]), x, temperature=1.0)
        >>> np.round(np.asarray(loss), 4)  # log(1 + 1 / e), twice, then 0
        array([0.3133, 0.3133, 0.    ], dtype=float32)

    Numerics: as `ntxent_loss`; in addition no ``0 / 0`` for anchors
    without positives, one class and all-distinct labels included.

    References:
        Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
        equation 2.
    """
    embeddings = _floating(y_pred, "y_pred", 2, "(batch, dim)")
    labels = _class_labels(y_true, embeddings.shape[0])
    dtype = safe_ops.dtype_name(embeddings)
    work = safe_ops.compute_dtype(dtype)
    inverse = _inverse_temperature(temperature, work)
    values = _info_nce(_unit_rows(embeddings), labels, inverse)
    return safe_ops.saturating_cast(values, dtype)


def _anchors_with_positives(labels):
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    # Each row matches itself once; a positive is a second match.
    return ops.sum(ops.cast(same, "int32"), axis=1) > 1


@keras.saving.register_keras_serializable(package="safeloss")
class NTXentLoss(SafeLoss):
    """NT-Xent (SimCLR) as a Keras loss; see `ntxent_loss`.

    The model outputs two views per example, shape (batch, 2, dim); `y_true`
    is ignored, so ``model.fit(x)`` works. `sample_weight` has one weight
    per example; the default reduction is the mean over all 2 * batch views.

    Args:
        temperature: the positive, finite temperature (default 0.1).
        reduction, name, dtype: as in `SafeLoss`.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> views = np.array([[[1.0, 0.0], [1.0, 0.0]],
        ...                   [[0.0, 1.0], [0.0, 1.0]]], "float32")
        >>> round(float(safeloss.NTXentLoss(temperature=1.0)(None, views)), 4)
        0.5514
    """

    label_kind = "ignored"

    def __init__(
        self,
        temperature=0.1,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.temperature = _check_temperature(temperature)

    def call(self, y_true, y_pred):
        return ntxent_loss(y_true, y_pred, temperature=self.temperature)

    def get_config(self):
        config = super().get_config()
        config["temperature"] = self.temperature
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class SupConLoss(SafeLoss):
    """Supervised contrastive loss as a Keras loss; see `supcon_loss`.

    `y_true` holds integer labels (batch,), `y_pred` embeddings (batch, dim).

    Anchors without positives contribute 0 and are left out of the mean:
    ``"sum_over_batch_size"`` and ``"mean"`` divide the weighted sum by the
    number of anchors that have a positive, ``"mean_with_sample_weight"`` by
    the sum of their weights (a batch with no positive pair gives 0 with a
    zero gradient); ``"sum"`` and ``"none"`` are unchanged, with 0 for those
    anchors.

    Args:
        temperature: the positive, finite temperature (default 0.1).
        reduction, name, dtype: as in `SafeLoss`.

    Example:
        >>> import numpy as np
        >>> import safeloss
        >>> x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], "float32")
        >>> loss = safeloss.SupConLoss(temperature=1.0)
        >>> round(float(loss(np.array([0, 0, 1]), x)), 4)  # the third has no positive
        0.3133
    """

    label_kind = "integer"

    def __init__(
        self,
        temperature=0.1,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.temperature = _check_temperature(temperature)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if self.reduction not in _MEAN_REDUCTIONS:
            return super().__call__(y_true, y_pred, sample_weight)
        # The base class divides by the batch size; anchors without a
        # positive must not count, so the mean is taken here.
        embeddings = _floating(y_pred, "y_pred", 2, "(batch, dim)")
        embeddings = ops.cast(embeddings, self.dtype)
        labels = self._convert_labels(y_true)
        values = ops.cast(self.call(labels, embeddings), self.dtype)
        counted = ops.cast(
            _anchors_with_positives(_class_labels(labels, None)), self.dtype
        )
        if self.reduction == "mean_with_sample_weight" and sample_weight is not None:
            weights = reduce_losses(ops.ones_like(values), sample_weight, "none")
            return reduce_losses(
                values, weights * counted, "mean_with_sample_weight"
            )
        weighted = reduce_losses(values, sample_weight, "none")
        return reduce_losses(weighted, counted, "mean_with_sample_weight")

    def call(self, y_true, y_pred):
        return supcon_loss(y_true, y_pred, temperature=self.temperature)

    def get_config(self):
        config = super().get_config()
        config["temperature"] = self.temperature
        return config
