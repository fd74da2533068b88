"""Loss functions and their `keras.losses.Loss` classes."""

from safeloss.losses._base import SafeLoss, reduce_losses

__all__ = ["SafeLoss", "reduce_losses"]

from safeloss.losses._contrastive import ContrastiveLoss, contrastive_loss  # noqa: E402
from safeloss.losses._triplet import TripletLoss, triplet_loss  # noqa: E402

__all__ += ["ContrastiveLoss", "TripletLoss", "contrastive_loss", "triplet_loss"]
