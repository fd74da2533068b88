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

from safeloss.losses import (  # noqa: E402
    ContrastiveLoss,
    TripletLoss,
    contrastive_loss,
    triplet_loss,
)

__all__ += ["ContrastiveLoss", "TripletLoss", "contrastive_loss", "triplet_loss"]
