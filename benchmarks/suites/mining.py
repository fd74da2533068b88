"""Mined triplet losses against pytorch-metric-learning, and their memory.

Claims checked by `--full` (dim 128, float32, 8 samples per class, forward +
backward):

* time at batch 1024 in compiled mode, against pytorch-metric-learning 2.9
  on PyTorch CPU in the same child process: semi-hard <= 0.2x of
  `TripletMarginMiner("semihard")` + `TripletMarginLoss`, batch-all <= 0.2x of
  `TripletMarginLoss()` over all triplets, batch-hard <= 1.0x of
  `BatchHardMiner` + `TripletMarginLoss` (configs ``batch=1024``, baseline
  ``pml``);
* peak-RSS increase at batch 8192 below 4 GiB for each mining, on every
  backend and mode, with the Gram matrix product alone as the floor
  (configs ``batch=8192``, baseline ``gram``).

One call at batch 8192 takes tens of seconds on a CPU, so those configs make
1 warm-up call and 3 timed calls (`max_warmup`, `max_repeats`) to fit the
runner's time cap. `--quick` checks that
the suite runs: one config per mining at batch 128 with all three
contenders, baseline ``pml``, so that safeloss compiles once per mining.
"""

import numpy as np

from benchmarks._runner import Suite, configs_for, value_and_grad_step

MININGS = ("semi_hard", "batch_all", "batch_hard")
SAMPLES_PER_CLASS = 8
DIM = 128


def make_configs(quick):
    if quick:
        return [config for mining in MININGS for config in configs_for(
            "mining", {"mining": mining, "batch": 128, "dim": DIM},
            ["pml", "gram", "safeloss"])]
    configs = []
    for mining in MININGS:
        configs += configs_for(
            "mining", {"mining": mining, "batch": 1024, "dim": DIM}, ["pml", "safeloss"]
        )
    for mining in MININGS:
        configs += configs_for(
            "mining", {"mining": mining, "batch": 8192, "dim": DIM},
            ["gram", "safeloss"], max_warmup=1, max_repeats=3,
        )
    return configs


SUITE = Suite("mining", make_configs)


def _inputs(params):
    rng = np.random.default_rng(0)
    batch = params["batch"]
    labels = (np.arange(batch) // SAMPLES_PER_CLASS).astype(np.int32)
    embeddings = rng.standard_normal((batch, params["dim"]), dtype=np.float32)
    return labels, embeddings


def _pml_step(mining, labels, embeddings):
    """pytorch-metric-learning on PyTorch CPU, whatever the Keras backend."""
    import torch
    from pytorch_metric_learning import losses, miners

    x = torch.tensor(embeddings, requires_grad=True)
    y = torch.tensor(labels, dtype=torch.int64)
    loss_fn = losses.TripletMarginLoss(margin=1.0)
    if mining == "semi_hard":
        miner = miners.TripletMarginMiner(margin=1.0, type_of_triplets="semihard")
    elif mining == "batch_hard":
        miner = miners.BatchHardMiner()
    else:
        miner = None  # TripletMarginLoss uses every triplet without a miner

    def step():
        pairs = miner(x, y) if miner is not None else None
        loss = loss_fn(x, y, pairs)
        torch.autograd.grad(loss, [x])

    return step


def build(contender, backend, mode, params):
    labels, embeddings = _inputs(params)
    if contender == "pml":
        return _pml_step(params["mining"], labels, embeddings)
    if contender == "gram":
        from keras import ops

        def gram(x):
            return ops.matmul(x, ops.transpose(x))

        return value_and_grad_step(gram, [embeddings], backend, mode)
    if contender != "safeloss":
        raise ValueError(f"unknown contender {contender!r}")
    import keras

    from safeloss.losses._mined_triplet import MINED_TRIPLET_LOSSES

    fn = MINED_TRIPLET_LOSSES[params["mining"]]
    y = keras.ops.convert_to_tensor(labels)

    def loss(x):
        return fn(y, x)

    return value_and_grad_step(loss, [embeddings], backend, mode)
