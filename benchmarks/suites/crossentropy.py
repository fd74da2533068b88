"""Safe cross-entropies against `keras.losses`, the hand-written formula and
the peers that have the loss.

Claim checked (by `--full`): at batch 4096 x 1000 classes in float32,
forward and backward (gradient with respect to the predictions and the
targets), the safeloss categorical cross-entropy costs at most 1.25x
`keras.losses.categorical_crossentropy` in compiled mode, both for logits
and for probabilities. Eager times are reported, not claimed. `--quick` uses
batch 512, to check that the suite runs.

Configs (baseline first, `keras` in each, so the ratios of the first
configs stay comparable with earlier runs):

* ``loss=categorical`` (the params of the first runs have no ``loss`` key:
  ``inputs=logits`` and ``inputs=probabilities``): `keras`, `safeloss`,
  `naive` (``-sum(y * log(softmax(x)))`` for logits, ``-sum(y * log(p /
  sum(p)))`` for probabilities), and for logits `optax`
  (``softmax_cross_entropy``, JAX) and `torch.cross_entropy`
  (``F.cross_entropy`` with probability targets, PyTorch).
* ``loss=sparse``, logits, integer labels (not differentiated): `keras`,
  `safeloss`, `naive` (the label's entry of ``log(softmax(x))``), `optax`
  (``softmax_cross_entropy_with_integer_labels``), `torch.cross_entropy`.
* ``loss=binary``, logits, 1000 independent outputs per sample, mean over
  them: `keras`, `safeloss`, `naive` (``-(y log sigmoid(x) + (1 - y) log(1 -
  sigmoid(x)))``), `optax` (``sigmoid_binary_cross_entropy``),
  `torch.binary_cross_entropy_with_logits`.
"""

import numpy as np

from benchmarks._runner import Suite, configs_for, value_and_grad_step

INPUTS = ("logits", "probabilities")
FUNCTION_NAMES = {"categorical": "categorical_crossentropy",
                  "sparse": "sparse_categorical_crossentropy",
                  "binary": "binary_crossentropy"}
CLASSES = 1000
PEERS = {
    ("categorical", "logits"): {"jax": ("optax",), "torch": ("torch.cross_entropy",)},
    ("sparse", "logits"): {"jax": ("optax",), "torch": ("torch.cross_entropy",)},
    ("binary", "logits"): {
        "jax": ("optax",), "torch": ("torch.binary_cross_entropy_with_logits",)
    },
}


def make_configs(quick):
    shape = {"batch": 512 if quick else 4096, "classes": CLASSES}
    configs = []
    for inputs in INPUTS:
        configs += configs_for(
            "crossentropy", dict(shape, inputs=inputs), ["keras", "safeloss", "naive"],
            peers=PEERS.get(("categorical", inputs)),
        )
    for loss in ("sparse", "binary"):
        configs += configs_for(
            "crossentropy", dict(shape, inputs="logits", loss=loss),
            ["keras", "safeloss", "naive"], peers=PEERS[(loss, "logits")],
        )
    return configs


SUITE = Suite("crossentropy", make_configs)


def _naive(loss, from_logits):
    from keras import ops

    if loss == "binary":
        def binary(y, x):
            p = ops.sigmoid(x) if from_logits else x
            return -ops.mean(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p), axis=-1)

        return binary
    if from_logits:
        def log_probabilities(x):
            return ops.log(ops.softmax(x, axis=-1))
    else:
        def log_probabilities(p):
            return ops.log(p / ops.sum(p, axis=-1, keepdims=True))
    if loss == "sparse":
        def sparse(labels, x):
            return -ops.take_along_axis(
                log_probabilities(x), labels[:, None], axis=-1)[:, 0]

        return sparse
    return lambda y, x: -ops.sum(y * log_probabilities(x), axis=-1)


def function(contender, loss, from_logits):
    """`fn(y_true, y_pred)` returning one value per sample.

    `benchmarks/accuracy.py` takes its cross-entropy contenders from here
    too, so the two tables measure the same formulas.
    """
    import keras

    if contender == "naive":
        return _naive(loss, from_logits)
    if contender in ("keras", "safeloss"):
        if contender == "keras":
            module = keras.losses
        else:
            import safeloss as module
        fn = getattr(module, FUNCTION_NAMES[loss])
        return lambda y, x: fn(y, x, from_logits=from_logits)
    if contender == "optax":
        import optax

        return {
            "categorical": lambda y, x: optax.losses.softmax_cross_entropy(x, y),
            "sparse": lambda y, x:
                optax.losses.softmax_cross_entropy_with_integer_labels(x, y),
            "binary": lambda y, x:
                optax.losses.sigmoid_binary_cross_entropy(x, y).mean(axis=-1),
        }[loss]
    if contender.startswith("torch."):
        import torch.nn.functional as F

        if loss == "binary":
            if from_logits:
                return lambda y, x: F.binary_cross_entropy_with_logits(
                    x, y, reduction="none").mean(dim=-1)
            return lambda y, x: F.binary_cross_entropy(
                x, y, reduction="none").mean(dim=-1)
        if loss == "sparse":
            return lambda y, x: F.cross_entropy(x, y.long(), reduction="none")
        return lambda y, x: F.cross_entropy(x, y, reduction="none")
    raise ValueError(f"unknown contender {contender!r}")


def build(contender, backend, mode, params):
    import keras

    loss = params.get("loss", "categorical")
    from_logits = params["inputs"] == "logits"
    fn = function(contender, loss, from_logits)

    rng = np.random.default_rng(0)
    batch, classes = params["batch"], params["classes"]
    scores = rng.standard_normal((batch, classes), dtype=np.float32)
    if not from_logits:
        scores = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    scores = scores.astype(np.float32)
    if loss == "sparse":
        # Integer labels cannot be differentiated: they are closed over.
        labels = keras.ops.convert_to_tensor(
            rng.integers(0, classes, batch).astype(np.int32))
        return value_and_grad_step(
            lambda x: fn(labels, x), [scores], backend, mode)
    if loss == "binary":
        targets = rng.integers(0, 2, (batch, classes)).astype(np.float32)
    else:
        targets = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    return value_and_grad_step(fn, [targets, scores], backend, mode)
