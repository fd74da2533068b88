"""Batch-scaling curves of the mined triplet and InfoNCE losses.

Time and peak-RSS increase of forward + backward against the batch size,
dim 128, float32, on JAX with `jax.jit` (one backend and mode: the curves'
shape, not a backend comparison, is the point), for safeloss and its peers:

* ``loss=batch_all|batch_hard|semi_hard``, 8 samples per class, batch 256,
  1024 and 4096: `pml` (pytorch-metric-learning 2.9 on PyTorch CPU, the same
  miners and loss as the `mining` suite) and `safeloss`;
* ``loss=ntxent|supcon``, batch 256, 1024, 4096 (NT-Xent: `batch` examples of
  two views, so 2 * batch rows): `naive` (the `infonce` suite's keras.ops
  formula), `pml` (`NTXentLoss`, `SupConLoss` on PyTorch CPU) and
  `safeloss`.

Each loss is one `series`: a contender that fails (the memory cap, the time
cap) ends its curve there. `benchmarks/plot.py` draws the curves from the
runner's JSON. `--quick` runs batch 64 only, to check that the suite runs.
"""

from benchmarks._runner import Config, Suite
from benchmarks.suites import infonce, mining

BACKEND, MODE = "jax", "compiled"
MINED = ("batch_all", "batch_hard", "semi_hard")
INFONCE = ("ntxent", "supcon")
BATCHES = {
    "mined": (256, 1024, 4096),
    "infonce": (256, 1024, 4096),
}


def make_configs(quick):
    configs = []
    for family, losses, contenders in (
        ("mined", MINED, ("pml", "safeloss")),
        ("infonce", INFONCE, ("naive", "pml", "safeloss")),
    ):
        batches = (64,) if quick else BATCHES[family]
        for loss in losses:
            configs += [
                Config("scaling", BACKEND, MODE,
                       {"loss": loss, "batch": batch, "dim": 128},
                       contenders, series=f"scaling {loss}")
                for batch in batches
            ]
    return configs


SUITE = Suite("scaling", make_configs)


def _pml_infonce_step(loss, data, labels):
    """pytorch-metric-learning on PyTorch CPU, whatever the Keras backend."""
    import torch
    from pytorch_metric_learning import losses

    x = torch.tensor(data, requires_grad=True)
    y = torch.tensor(labels, dtype=torch.int64)
    if loss == "ntxent":
        module = losses.NTXentLoss(temperature=infonce.TEMPERATURE)
        rows = lambda: x.reshape(-1, x.shape[-1])  # noqa: E731
    else:
        module = losses.SupConLoss(temperature=infonce.TEMPERATURE)
        rows = lambda: x  # noqa: E731

    def step():
        torch.autograd.grad(module(rows(), y), [x])

    return step


def build(contender, backend, mode, params):
    loss = params["loss"]
    if loss in MINED:
        return mining.build(contender, backend, mode, dict(params, mining=loss))
    if contender == "pml":
        data, labels = infonce._inputs(params)
        return _pml_infonce_step(loss, data, labels)
    return infonce.build(contender, backend, mode, params)
