"""How to build and feed every public loss class, for the shared tests.

Each public `keras.losses.Loss` subclass in `safeloss.__all__` needs an
entry here; `test_serialization.py` fails for a class without one. An entry
gives constructor arguments that differ from the defaults (so a round trip
that dropped them would be caught), the per-sample shape of `y_pred`, and a
function making `y_true` for a batch.
"""

import dataclasses
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class LossExample:
    kwargs: dict
    y_pred_shape: tuple
    make_y_true: Callable[[int, np.random.Generator], object]


def no_targets(batch, rng):
    return None


def class_labels(num_classes):
    def make(batch, rng):
        return np.arange(batch, dtype=np.int32) % num_classes

    return make


def binary_targets(batch, rng):
    return (np.arange(batch) % 2).astype(np.float32)


# Entries are added by the modules that define the losses.
LOSS_EXAMPLES = {}

LOSS_EXAMPLES["IdentityLoss"] = LossExample(
    kwargs={"name": "model_loss"}, y_pred_shape=(1,), make_y_true=no_targets
)


LOSS_EXAMPLES["TripletLoss"] = LossExample(
    kwargs={"margin": 2.0, "distance": "cosine", "soft": True},
    y_pred_shape=(3, 4),
    make_y_true=no_targets,
)
LOSS_EXAMPLES["ContrastiveLoss"] = LossExample(
    kwargs={"margin": 2.0, "distance": "squared_euclidean"},
    y_pred_shape=(2, 4),
    make_y_true=binary_targets,
)
