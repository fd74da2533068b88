"""Losses for `test_audit.py`: hand-written ones that break, safe ones that
must pass.

`SAFE_LOSSES` lists ``(function name, --kind)`` pairs that the audit must
pass. When the safeloss loss classes land, add a function here calling each
(``def triplet_loss(y_true, y_pred): return safeloss.TripletLoss()(y_true,
y_pred)``) and an entry in `SAFE_LOSSES`.
"""

import keras
from keras import ops

from safeloss import ops as safe_ops
from safeloss.distances import paired_distances, pairwise_distances


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


def safe_triplet(y_true, y_pred):
    anchor, positive, negative = y_pred[:, 0], y_pred[:, 1], y_pred[:, 2]
    d_ap = paired_distances(anchor, positive)
    d_an = paired_distances(anchor, negative)
    return safe_ops.softplus(d_ap - d_an + 1.0)


def safe_contrastive(y_true, y_pred, margin=1.0):
    squared = paired_distances(y_pred[:, 0], y_pred[:, 1], "squared_euclidean")
    distance = paired_distances(y_pred[:, 0], y_pred[:, 1])
    similar = ops.cast(y_true, distance.dtype)
    # Distances are non-negative, so the hinge lies in [0, margin]: its
    # square cannot overflow, and the squared distance saturates.
    hinge = safe_ops.clamp(margin - distance, 0.0, margin)
    return similar * squared + (1.0 - similar) * ops.square(hinge)


def safe_center_spread(y_true, y_pred):
    """Mean distance to same-label embeddings (a mining-loss skeleton)."""
    distances = pairwise_distances(y_pred)
    same = ops.cast(ops.expand_dims(y_true, 0) == ops.expand_dims(y_true, 1), distances.dtype)
    return safe_ops.safe_divide(
        ops.sum(same * distances, axis=-1), ops.sum(same, axis=-1)
    )


def safe_crossentropy_from_logits(y_true, y_pred):
    logits = safe_ops.clip_logits(y_pred)
    log_probs = logits - safe_ops.logsumexp(logits, axis=-1, keepdims=True)
    return -ops.sum(ops.cast(y_true, log_probs.dtype) * log_probs, axis=-1)


def safe_crossentropy_from_probabilities(y_true, y_pred):
    total = ops.sum(y_pred, axis=-1, keepdims=True)
    probabilities = safe_ops.safe_divide(y_pred, total)
    return -ops.sum(ops.cast(y_true, y_pred.dtype) * safe_ops.safe_log(probabilities), axis=-1)


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
    ("safe_triplet", "triplet"),
    ("safe_contrastive", "pairs"),
    ("safe_center_spread", "embeddings"),
    ("safe_crossentropy_from_logits", "logits"),
    ("safe_crossentropy_from_probabilities", "probabilities"),
]
