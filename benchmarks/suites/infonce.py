"""NT-Xent and SupCon, forward and backward, against the textbook formula
and pytorch-metric-learning.

Claims checked (by `--full`): at batch 4096, dim 128, float32, the peak-RSS
increase of safeloss stays below 3 GiB on every backend and mode; the time
is compared with pytorch-metric-learning (PyTorch only) at the batches where
it runs.

* ``loss=ntxent``: `batch` examples of two views each, (batch, 2, dim), so
  2 * batch rows; PML's `NTXentLoss` gets the same rows with the example
  index as label (two views per label, the SimCLR setting).
* ``loss=supcon``: `batch` embeddings (batch, dim), 8 per class; PML's
  `SupConLoss` gets the same.

Contenders: ``naive`` (baseline; `keras.ops` as in a tutorial: divide by
the norm, mask the diagonal with -inf, log-softmax), ``pml`` (PyTorch
only) and ``safeloss``. Temperature 0.1. Batch 4096 times 5 calls
(`max_repeats`). `--quick` runs batch 64 on every backend, to check that the
suite runs (PML's NT-Xent goes over 8 GiB at 512).
"""

import numpy as np

from benchmarks._runner import BACKENDS, Config, Suite, value_and_grad_step

TEMPERATURE = 0.1
SAMPLES_PER_CLASS = 8
LOSSES = ("ntxent", "supcon")


def _configs(loss, batch, backends, with_pml, **caps):
    configs = []
    for backend in backends:
        modes = ("eager",) if backend == "torch" else ("eager", "compiled")
        contenders = ["naive", "safeloss"]
        if backend == "torch" and with_pml:
            contenders.insert(1, "pml")
        params = {"loss": loss, "batch": batch, "dim": 128}
        configs += [
            Config("infonce", backend, mode, params, tuple(contenders), **caps)
            for mode in modes
        ]
    return configs


def make_configs(quick):
    if quick:
        return [c for loss in LOSSES for c in _configs(loss, 64, BACKENDS, True)]
    configs = []
    for loss in LOSSES:
        # PML's batches below 4096 run on PyTorch only: it has no other backend.
        for batch in (512, 1024, 2048):
            configs += _configs(loss, batch, ("torch",), True)
        # One eager NT-Xent call takes several seconds here: 33 calls of
        # each contender would not fit the time cap.
        configs += _configs(loss, 4096, BACKENDS, True, max_repeats=5)
    return configs


SUITE = Suite("infonce", make_configs)


def _inputs(params):
    rng = np.random.default_rng(0)
    batch, dim = params["batch"], params["dim"]
    if params["loss"] == "ntxent":
        views = rng.standard_normal((batch, 2, dim), dtype=np.float32)
        return views, np.arange(2 * batch, dtype=np.int32) // 2
    embeddings = rng.standard_normal((batch, dim), dtype=np.float32)
    return embeddings, np.arange(batch, dtype=np.int32) // SAMPLES_PER_CLASS


def _naive(loss, labels):
    """The textbook formula in `keras.ops`, as tutorials write it."""
    from keras import ops

    def per_row(rows):
        unit = rows / ops.norm(rows, axis=-1, keepdims=True)
        logits = ops.matmul(unit, ops.transpose(unit)) / TEMPERATURE
        eye = ops.eye(ops.shape(rows)[0], dtype="bool")
        logits = ops.where(eye, float("-inf"), logits)
        log_prob = logits - ops.logsumexp(logits, axis=1, keepdims=True)
        positives = ops.logical_and(
            ops.equal(labels[:, None], labels[None, :]), ops.logical_not(eye)
        )
        total = ops.sum(ops.where(positives, log_prob, 0.0), axis=1)
        return -total / ops.sum(ops.cast(positives, "float32"), axis=1)

    if loss == "ntxent":
        return lambda views: per_row(ops.reshape(views, (-1, views.shape[-1])))
    return per_row


def build(contender, backend, mode, params):
    import keras

    loss = params["loss"]
    data, labels_np = _inputs(params)
    labels = keras.ops.convert_to_tensor(labels_np)
    if contender == "naive":
        fn = _naive(loss, labels)
    elif contender == "safeloss":
        import safeloss

        if loss == "ntxent":
            def fn(views):
                return safeloss.ntxent_loss(None, views, temperature=TEMPERATURE)
        else:
            def fn(embeddings):
                return safeloss.supcon_loss(
                    labels, embeddings, temperature=TEMPERATURE
                )
    elif contender == "pml":
        if backend != "torch":
            raise ValueError("pytorch-metric-learning runs on torch only")
        from pytorch_metric_learning import losses

        if loss == "ntxent":
            pml = losses.NTXentLoss(temperature=TEMPERATURE)

            def fn(views):
                return pml(views.reshape(-1, views.shape[-1]), labels)
        else:
            pml = losses.SupConLoss(temperature=TEMPERATURE)

            def fn(embeddings):
                return pml(embeddings, labels)
    else:
        raise ValueError(f"unknown contender {contender!r}")

    return value_and_grad_step(fn, [data], backend, mode)
