"""safeloss: numerically safe, drop-in loss functions for Keras 3."""

from safeloss import ops
from safeloss.distances import paired_distances, pairwise_distances

__version__ = "0.1.0"

__all__ = [
    "ops",
    "paired_distances",
    "pairwise_distances",
]

from safeloss.callbacks import NonFiniteGuard  # noqa: E402

__all__ += ["NonFiniteGuard"]

from safeloss._lookup import get  # noqa: E402
from safeloss.losses._identity import IdentityLoss, identity_loss  # noqa: E402

__all__ += ["IdentityLoss", "get", "identity_loss"]

from safeloss.losses._mined_triplet import (  # noqa: E402
    TripletHardLoss,
    TripletSemiHardLoss,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    semi_hard_triplet_loss,
)

__all__ += [
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

from safeloss.losses import (  # noqa: E402
    ContrastiveLoss,
    TripletLoss,
    contrastive_loss,
    triplet_loss,
)

__all__ += ["ContrastiveLoss", "TripletLoss", "contrastive_loss", "triplet_loss"]

from safeloss import layers  # noqa: E402

__all__ += ["layers"]
