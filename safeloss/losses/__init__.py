"""Loss functions and their `keras.losses.Loss` classes."""

from safeloss.losses._base import SafeLoss, reduce_losses

__all__ = ["SafeLoss", "reduce_losses"]

from safeloss.losses._mined_triplet import (  # noqa: E402
    MINED_TRIPLET_LOSSES,
    TripletHardLoss,
    TripletSemiHardLoss,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    semi_hard_triplet_loss,
)

__all__ += [
    "MINED_TRIPLET_LOSSES",
    "TripletHardLoss",
    "TripletSemiHardLoss",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "semi_hard_triplet_loss",
]

from safeloss.losses._infonce import (  # noqa: E402
    NTXentLoss,
    SupConLoss,
    ntxent_loss,
    supcon_loss,
)

__all__ += ["NTXentLoss", "SupConLoss", "ntxent_loss", "supcon_loss"]

from safeloss.losses._crossentropy import (  # noqa: E402
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    sparse_categorical_crossentropy,
)

__all__ += [
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

from safeloss.losses._contrastive import ContrastiveLoss, contrastive_loss  # noqa: E402
from safeloss.losses._triplet import TripletLoss, triplet_loss  # noqa: E402

__all__ += ["ContrastiveLoss", "TripletLoss", "contrastive_loss", "triplet_loss"]
