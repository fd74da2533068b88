"""safeloss: numerically safe, drop-in loss functions for Keras 3."""

from safeloss import layers, losses, ops
from safeloss._lookup import get
from safeloss.callbacks import NonFiniteGuard
from safeloss.distances import paired_distances, pairwise_distances
# The public loss classes and functions (`losses.PUBLIC_LOSSES`, listed in
# `__all__` below) live in safeloss.losses; they are re-exported here.
from safeloss.losses import *  # noqa: F401,F403

__version__ = "0.1.0"

__all__ = [
    "NonFiniteGuard",
    "get",
    "layers",
    "ops",
    "paired_distances",
    "pairwise_distances",
] + losses.PUBLIC_LOSSES
