"""Loss functions and their `keras.losses.Loss` classes."""

from safeloss.losses._base import SafeLoss, reduce_losses

__all__ = ["SafeLoss", "reduce_losses"]
