"""Loss functions and their `keras.losses.Loss` classes."""

from safeloss.losses._base import SafeLoss, reduce_losses

__all__ = ["SafeLoss", "reduce_losses"]

from safeloss.losses._infonce import (  # noqa: E402
    NTXentLoss,
    SupConLoss,
    ntxent_loss,
    supcon_loss,
)

__all__ += ["NTXentLoss", "SupConLoss", "ntxent_loss", "supcon_loss"]
