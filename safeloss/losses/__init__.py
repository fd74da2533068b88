"""Loss functions and their `keras.losses.Loss` classes."""

from safeloss.losses._base import SafeLoss, reduce_losses
from safeloss.losses._contrastive import ContrastiveLoss, contrastive_loss
from safeloss.losses._crossentropy import (
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
from safeloss.losses._identity import IdentityLoss, identity_loss
from safeloss.losses._infonce import NTXentLoss, SupConLoss, ntxent_loss, supcon_loss
from safeloss.losses._mined_triplet import (
    MINED_TRIPLET_LOSSES,
    TripletHardLoss,
    TripletSemiHardLoss,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    semi_hard_triplet_loss,
)
from safeloss.losses._triplet import TripletLoss, triplet_loss

# The losses a user picks from; `safeloss` re-exports exactly these.
PUBLIC_LOSSES = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "ContrastiveLoss",
    "IdentityLoss",
    "NTXentLoss",
    "SparseCategoricalCrossentropy",
    "SupConLoss",
    "TripletHardLoss",
    "TripletLoss",
    "TripletSemiHardLoss",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "contrastive_loss",
    "identity_loss",
    "ntxent_loss",
    "semi_hard_triplet_loss",
    "sparse_categorical_crossentropy",
    "supcon_loss",
    "triplet_loss",
]

__all__ = ["MINED_TRIPLET_LOSSES", "SafeLoss", "reduce_losses"] + PUBLIC_LOSSES
