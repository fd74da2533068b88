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

# Issue 5: mined triplet losses with TensorFlow Addons' names.
LOSS_EXAMPLES["TripletSemiHardLoss"] = LossExample(
    {"margin": 0.5, "distance_metric": "squared-L2"}, (3,), class_labels(2)
)
LOSS_EXAMPLES["TripletHardLoss"] = LossExample(
    {"margin": 0.5, "soft": True, "distance_metric": "angular"}, (3,), class_labels(2)
)

# Issue 6: InfoNCE losses. Batches of 8 have four classes of two each.
LOSS_EXAMPLES["NTXentLoss"] = LossExample({"temperature": 0.5}, (2, 3), no_targets)
LOSS_EXAMPLES["SupConLoss"] = LossExample({"temperature": 0.2}, (3,), class_labels(4))


def one_hot_targets(num_classes):
    def make(batch, rng):
        return np.eye(num_classes, dtype=np.float32)[np.arange(batch) % num_classes]

    return make


LOSS_EXAMPLES.update(
    {
        "CategoricalCrossentropy": LossExample(
            {"from_logits": True, "label_smoothing": 0.1}, (3,), one_hot_targets(3)
        ),
        "SparseCategoricalCrossentropy": LossExample(
            {"from_logits": True, "ignore_class": 2}, (3,), class_labels(3)
        ),
        "BinaryCrossentropy": LossExample(
            {"from_logits": True, "label_smoothing": 0.1}, (1,), binary_targets
        ),
        "CategoricalFocalCrossentropy": LossExample(
            {"from_logits": True, "alpha": [0.2, 0.3, 0.5], "gamma": 0.5},
            (3,),
            one_hot_targets(3),
        ),
        "BinaryFocalCrossentropy": LossExample(
            {"from_logits": True, "apply_class_balancing": True, "alpha": 0.4, "gamma": 1.5},
            (1,),
            binary_targets,
        ),
    }
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

# Issue 9: the `global_batch` option of the count-normalised losses.
for _name in ("TripletLoss", "TripletSemiHardLoss", "TripletHardLoss", "NTXentLoss", "SupConLoss"):
    LOSS_EXAMPLES[_name] = dataclasses.replace(
        LOSS_EXAMPLES[_name], kwargs={**LOSS_EXAMPLES[_name].kwargs, "global_batch": True}
    )
del _name
