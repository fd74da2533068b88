"""Safe Euclidean distance against the textbook formula.

Claim checked (by `--full`): the distance between two (4096, 512) float32
batches, forward and backward, costs at most 1.25x the naive formula in
compiled mode. `--quick` uses batch 512, to check that the suite runs.
"""

import numpy as np

from benchmarks._runner import Suite, configs_for, value_and_grad_step


def make_configs(quick):
    return configs_for("euclidean", {"batch": 512 if quick else 4096, "dim": 512},
                       ["naive", "safeloss"])


SUITE = Suite("euclidean", make_configs)


def build(contender, backend, mode, params):
    from keras import ops

    if contender == "naive":
        def distance(a, b):
            return ops.sqrt(ops.sum(ops.square(a - b), axis=-1))
    elif contender == "safeloss":
        from safeloss.ops import safe_norm

        def distance(a, b):
            return safe_norm(a - b, axis=-1)
    else:
        raise ValueError(f"unknown contender {contender!r}")

    rng = np.random.default_rng(0)
    shape = (params["batch"], params["dim"])
    inputs = [rng.standard_normal(shape, dtype=np.float32) for _ in range(2)]
    return value_and_grad_step(distance, inputs, backend, mode)
