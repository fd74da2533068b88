"""The three-input triplet loss against the hand-written formula and peers.

Claim checked (by `--full`): forward and backward of `safeloss.triplet_loss`
on three (4096, 512) float32 batches costs at most 1.25x the naive keras.ops
formula ``max(sqrt(sum((a - p)**2)) - sqrt(sum((a - n)**2)) + 1, 0)`` in
compiled mode. Peers, on the backend they run on: optax's
`triplet_margin_loss` (JAX), `torch.nn.functional.triplet_margin_loss` and
pytorch-metric-learning's `TripletMarginLoss` given the triplets explicitly
(PyTorch). Every contender uses margin 1 and returns per-triplet losses,
summed by the step, except pytorch-metric-learning, which returns their
mean over the non-zero ones. `--quick` uses batch 512, to check that the
suite runs.
"""

import numpy as np

from benchmarks._runner import Suite, configs_for, value_and_grad_step

DIM = 512
PEERS = {
    "tensorflow": (),
    "jax": ("optax",),
    "torch": ("torch.triplet_margin_loss", "pml explicit triplets"),
}


def make_configs(quick):
    return configs_for("triplet", {"batch": 512 if quick else 4096, "dim": DIM},
                       ["naive", "safeloss"], peers=PEERS)


SUITE = Suite("triplet", make_configs)


def _naive():
    from keras import ops

    def loss(a, p, n):
        d_ap = ops.sqrt(ops.sum(ops.square(a - p), axis=-1))
        d_an = ops.sqrt(ops.sum(ops.square(a - n), axis=-1))
        return ops.maximum(d_ap - d_an + 1.0, 0.0)

    return loss


def _pml():
    import torch
    from pytorch_metric_learning.losses import TripletMarginLoss

    module = TripletMarginLoss(margin=1.0)

    def loss(a, p, n):
        batch = a.shape[0]
        # Triplet i is (row i, row batch + i, row 2 batch + i); the labels
        # make each anchor's positive the same class and its negative not.
        embeddings = torch.cat([a, p, n])
        index = torch.arange(batch, device=a.device)
        labels = torch.cat([index, index, index + batch])
        return module(embeddings, labels, (index, index + batch, index + 2 * batch))

    return loss


def build(contender, backend, mode, params):
    if contender == "naive":
        loss = _naive()
    elif contender == "safeloss":
        from safeloss import triplet_loss as loss
    elif contender == "optax":
        import optax

        loss = optax.losses.triplet_margin_loss
    elif contender == "torch.triplet_margin_loss":
        import torch

        def loss(a, p, n):
            return torch.nn.functional.triplet_margin_loss(
                a, p, n, margin=1.0, reduction="none"
            )
    elif contender == "pml explicit triplets":
        loss = _pml()
    else:
        raise ValueError(f"unknown contender {contender!r}")

    rng = np.random.default_rng(0)
    shape = (params["batch"], params["dim"])
    inputs = [rng.standard_normal(shape, dtype=np.float32) for _ in range(3)]
    return value_and_grad_step(loss, inputs, backend, mode)
