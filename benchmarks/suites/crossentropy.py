"""Safe categorical cross-entropy against `keras.losses`.

Claim checked: at batch 4096 x 1000 classes in float32, forward and
backward (gradient with respect to the predictions and the targets), the
safeloss categorical cross-entropy costs at most 1.25x
`keras.losses.categorical_crossentropy` in compiled mode, both for logits
and for probabilities. Eager times are reported, not claimed.
"""

import numpy as np

from benchmarks._runner import Suite, configs_for, value_and_grad_step

INPUTS = ("logits", "probabilities")


def make_configs(quick):
    # The claim is about this one size, so --quick differs only in repeats.
    configs = []
    for inputs in INPUTS:
        configs += configs_for(
            "crossentropy",
            {"batch": 4096, "classes": 1000, "inputs": inputs},
            ["keras", "safeloss"],
        )
    return configs


SUITE = Suite("crossentropy", make_configs)


def build(contender, backend, mode, params):
    import keras

    from_logits = params["inputs"] == "logits"
    if contender == "keras":
        function = keras.losses.categorical_crossentropy
    elif contender == "safeloss":
        from safeloss import categorical_crossentropy as function
    else:
        raise ValueError(f"unknown contender {contender!r}")

    def loss(y_true, y_pred):
        return function(y_true, y_pred, from_logits=from_logits)

    rng = np.random.default_rng(0)
    batch, classes = params["batch"], params["classes"]
    targets = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    scores = rng.standard_normal((batch, classes), dtype=np.float32)
    if not from_logits:
        scores = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    return value_and_grad_step(loss, [targets, scores.astype(np.float32)], backend, mode)
