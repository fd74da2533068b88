"""Losses for `test_audit.py`: hand-written ones that break, safe ones that
must pass.

`SAFE_LOSSES` lists ``(function name, --kind)`` pairs that the audit must
pass: safeloss's own loss classes, one function per kind.
"""

import keras
from keras import ops

import safeloss


def naive_triplet(y_true, y_pred):
    """The siamese-tutorial triplet loss (the demo's Lambda layer)."""
    anchor, positive, negative = y_pred[:, 0], y_pred[:, 1], y_pred[:, 2]
    d_ap = ops.sqrt(ops.sum(ops.square(anchor - positive), axis=-1))
    d_an = ops.sqrt(ops.sum(ops.square(anchor - negative), axis=-1))
    return ops.log(1.0 + ops.exp(d_ap - d_an))


def relu_crossentropy(y_true, y_pred):
    """Keras' categorical cross-entropy, fed ReLU outputs (zero rows)."""
    return keras.losses.categorical_crossentropy(y_true, y_pred)


def naive_softmax_crossentropy(y_true, y_pred):
    """Softmax by hand without the max shift: exp overflows on big logits."""
    exps = ops.exp(y_pred)
    return -ops.sum(y_true * ops.log(exps / ops.sum(exps, axis=-1, keepdims=True)), axis=-1)


def safeloss_triplet(y_true, y_pred):
    return safeloss.TripletLoss(soft=True, reduction="none")(y_true, y_pred)


def safeloss_contrastive(y_true, y_pred):
    return safeloss.ContrastiveLoss(reduction="none")(y_true, y_pred)


def safeloss_semi_hard(y_true, y_pred):
    return safeloss.TripletSemiHardLoss(reduction="none")(y_true, y_pred)


def safeloss_supcon(y_true, y_pred):
    return safeloss.SupConLoss(temperature=0.01, reduction="none")(y_true, y_pred)


def safeloss_crossentropy_from_logits(y_true, y_pred):
    return safeloss.CategoricalCrossentropy(from_logits=True, reduction="none")(y_true, y_pred)


def safeloss_crossentropy_from_probabilities(y_true, y_pred):
    return safeloss.CategoricalCrossentropy(reduction="none")(y_true, y_pred)


def raises(y_true, y_pred):
    raise RuntimeError("labels must be strings")


def one_argument(y_pred):
    return ops.sum(y_pred)




def naive_softplus(y_true, y_pred):
    """``log(1 + exp(x))`` written out: exp overflows above 88.7 in float32."""
    return ops.sum(ops.log(1.0 + ops.exp(y_pred)), axis=-1)


def naive_log_likelihood(y_true, y_pred):
    """``-sum(y log p)`` on unnormalised probabilities: log(0) at exact zeros."""
    return -ops.sum(y_true * ops.log(y_pred), axis=-1)


SAFE_LOSSES = [
    ("safeloss_triplet", "triplet"),
    ("safeloss_contrastive", "pairs"),
    ("safeloss_semi_hard", "embeddings"),
    ("safeloss_supcon", "embeddings"),
    ("safeloss_crossentropy_from_logits", "logits"),
    ("safeloss_crossentropy_from_probabilities", "probabilities"),
]
