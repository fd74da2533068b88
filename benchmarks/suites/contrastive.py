"""The pairwise contrastive loss against the hand-written formula and
pytorch-metric-learning.

Forward and backward on 4096 pairs of 512-dim float32 embeddings, (4096, 2,
512) (`--full`; `--quick` uses 512 pairs, to check that the suite runs),
half of them similar, margin 1, one value per pair summed by the step:

* `naive` (baseline): Hadsell et al.'s ``y d**2 + (1 - y) max(m - d, 0)**2``
  with ``d = sqrt(sum(square(a - b)))`` in keras.ops, which is also
  TensorFlow Addons' formula given that distance;
* `safeloss`: `safeloss.contrastive_loss(y, pairs)`;
* `pml` (PyTorch): pytorch-metric-learning's `ContrastiveLoss(pos_margin=0,
  neg_margin=1)` given the pairs as an index tuple over the concatenated
  rows, with `LpDistance(normalize_embeddings=False)`. It is not the same
  loss: PML's terms are ``d`` and ``max(m - d, 0)``, not squared, averaged
  over the non-zero ones; it costs a distance matrix of every row against
  every row, then picks the pairs.
"""

import numpy as np

from benchmarks._runner import Suite, configs_for, value_and_grad_step

DIM = 512
MARGIN = 1.0


def make_configs(quick):
    return configs_for("contrastive", {"batch": 512 if quick else 4096, "dim": DIM},
                       ["naive", "safeloss"], peers={"torch": ("pml",)})


SUITE = Suite("contrastive", make_configs)


def _naive(similar):
    from keras import ops

    def loss(pairs):
        d = ops.sqrt(ops.sum(ops.square(pairs[:, 0] - pairs[:, 1]), axis=-1))
        return (similar * ops.square(d)
                + (1.0 - similar) * ops.square(ops.maximum(MARGIN - d, 0.0)))

    return loss


def _pml(similar_np):
    import torch
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import ContrastiveLoss

    module = ContrastiveLoss(
        pos_margin=0.0, neg_margin=MARGIN,
        distance=LpDistance(normalize_embeddings=False))
    batch = len(similar_np)
    index = torch.arange(batch)
    similar = torch.tensor(similar_np > 0)
    # Pair i is (row i, row batch + i) of the concatenated rows.
    tuples = (index[similar], index[similar] + batch,
              index[~similar], index[~similar] + batch)
    labels = torch.cat([index, torch.where(similar, index, index + batch)])

    def loss(pairs):
        return module(torch.cat([pairs[:, 0], pairs[:, 1]]), labels, tuples)

    return loss


def build(contender, backend, mode, params):
    import keras

    rng = np.random.default_rng(0)
    pairs = rng.standard_normal(
        (params["batch"], 2, params["dim"]), dtype=np.float32)
    similar_np = (np.arange(params["batch"]) % 2).astype(np.float32)
    similar = keras.ops.convert_to_tensor(similar_np)
    if contender == "naive":
        loss = _naive(similar)
    elif contender == "safeloss":
        import safeloss

        def loss(pairs):
            return safeloss.contrastive_loss(similar, pairs, margin=MARGIN)
    elif contender == "pml":
        if backend != "torch":
            raise ValueError("pytorch-metric-learning runs on torch only")
        loss = _pml(similar_np)
    else:
        raise ValueError(f"unknown contender {contender!r}")
    return value_and_grad_step(loss, [pairs], backend, mode)
