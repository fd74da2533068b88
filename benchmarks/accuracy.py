"""Accuracy benchmark: safeloss and its peers on adversarial inputs.

    python benchmarks/accuracy.py [--backend tensorflow jax torch]
        [--dtype float16 bfloat16 float32 float64] [--json PATH]
        [--markdown PATH]

For each loss, dtype, backend and contender (safeloss, the hand-written
formula, keras.losses, optax on JAX, torch.nn.functional and
pytorch-metric-learning on PyTorch, where they have the loss), every case of
an adversarial input set is run eagerly, value and gradient (of the summed
value, with respect to the embeddings or predictions, not the targets), with
`safeloss.testing.value_and_grad`. A row of the table gives:

* the largest error of the value against a float64 reference, over the
  cases where both are finite. The reference is the brute-force function of
  `tests/references.py` evaluated in float64 on the inputs already rounded
  to the dtype, then saturated at the dtype's largest finite value, the
  best answer the dtype can hold. Two inputs are read by convention
  (`reference_values`): entries below the dtype's smallest normal number
  may be kept or flushed to 0 (CPUs and GPUs differ), and the error is
  that against the nearer of the two answers; an infinite entry is the
  limit of a growing finite one, so that a row whose limit is infinite (a
  +inf logit with target 0) counts only in the NaN and inf columns. The
  error is relative, ``|v - r| / max(|r|, atol)`` with the dtype's absolute
  tolerance of `safeloss.testing.tolerances` as the floor, except for the
  mined triplet losses, whose distances come from a Gram matrix: there it
  is norm-scaled, ``|v - r| / max(|r|, s)`` with ``s`` the largest row norm
  of the batch. Where the exact value is a limit that a convention replaces
  (``log 0``, an all-zero probability row) the reference follows the
  float64 conventions of `tests/references.py` (logarithms floored at
  float64's smallest normal, an all-zero row read as uniform);
* the case with that largest error;
* the share of cases whose value has a NaN, an inf; whose gradient has a
  NaN, an inf.

One child process per backend (each picks its backend before importing
keras); the parent only collects. Eager mode only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)

from benchmarks._report import caption, finish_report, start_report  # noqa: E402
from benchmarks.suites import crossentropy  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
DTYPES = ("float16", "bfloat16", "float32", "float64")
MARGIN = 1.0
TEMPERATURE = 0.1
LOW_TEMPERATURE = 0.01
ROWS, DIM, CLASSES = 4, 4, 5
# Mined and InfoNCE batches: 4 classes of 2 (NT-Xent: 4 examples x 2 views).
BATCH_LABELS = np.repeat(np.arange(4), 2).astype(np.int32)


# --- adversarial inputs, float64, rounded to the dtype later ---------------


def _limits(dtype):
    from safeloss.ops import finfo

    info = finfo(dtype)
    return float(info.max), float(info.tiny)


def _embedding_cases(dtype, count, rows=ROWS, dim=DIM):
    """{name: `count` arrays (rows, dim)}: the embedding cases."""
    largest, tiny = _limits(dtype)
    rng = np.random.default_rng(0)

    def normal():
        return rng.standard_normal((rows, dim))

    signs = np.sign(normal()) + (normal() == 0)
    a = normal()
    cases = {
        "random": [normal() for _ in range(count)],
        "zeros": [np.zeros((rows, dim))] * count,
        "identical anchor/positive": [a, a] + [normal() for _ in range(count - 2)],
        "duplicates": [a] * count,
        "near duplicates": [a] + [a * (1 + 4e-3 * k) for k in range(1, count)],
        "subnormals": [tiny / 4 * np.sign(normal()) * (k % 2) for k in range(count)],
        "magnitude max/10": [largest / 10 * signs * (-1) ** k for k in range(count)],
        "magnitude 300": [300.0 * signs * (-1) ** k for k in range(count)],
        "ReLU zero rows": [np.zeros((rows, dim))] + [
            np.maximum(normal(), 0) for _ in range(count - 1)
        ],
    }
    return cases


def _batch_cases(dtype, shape):
    """{name: one float64 array of `shape`}: batches for mined/InfoNCE."""
    largest, tiny = _limits(dtype)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    unit = x / np.max(np.abs(x))
    same_class = np.repeat(rng.standard_normal((4, shape[-1])), 2, axis=0)
    relu = np.maximum(x, 0).reshape(-1, shape[-1])
    relu[:2] = 0
    return {
        "random": x,
        "zeros": np.zeros(shape),
        "duplicates": np.broadcast_to(x.reshape(-1, shape[-1])[0], shape).copy(),
        "identical positives": same_class.reshape(shape),
        "subnormals": tiny / 4 * np.sign(x),
        "magnitude max/10": largest / 10 * unit,
        "magnitude 300": 300.0 * unit,
        "ReLU zero rows": relu.reshape(shape),
    }


def _logit_cases(dtype, binary):
    largest, _ = _limits(dtype)
    rng = np.random.default_rng(2)
    x = 3 * rng.standard_normal((ROWS, CLASSES))
    hot = np.arange(ROWS) % CLASSES
    plus_inf_target, minus_inf_other = x.copy(), x.copy()
    plus_inf_target[np.arange(ROWS), hot] = np.inf
    minus_inf_other[np.arange(ROWS), (hot + 1) % CLASSES] = -np.inf
    separated = np.where(rng.standard_normal(x.shape) > 0, 100.0, -100.0)
    cases = {
        "random": x,
        "zeros": np.zeros_like(x),
        "magnitude max/10": largest / 10 * np.sign(x),
        "magnitude 300": 300.0 * np.sign(x),
        "separated +-100": separated,
        "+inf logits": plus_inf_target,
        "-inf logits": minus_inf_other,
    }
    if binary:
        y = (rng.standard_normal(x.shape) > 0).astype(float)
        # Saturated the right way: sigmoid(+-100) is 0 or 1 where y agrees.
        cases["separated +-100"] = np.where(y > 0, 100.0, -100.0)
        return {name: (y, v) for name, v in cases.items()}
    y = np.eye(CLASSES)[hot]
    cases["separated +-100"] = np.where(y > 0, 100.0, separated)
    return {name: (y, v) for name, v in cases.items()}


def _probability_cases(dtype, binary):
    _, tiny = _limits(dtype)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((ROWS, CLASSES))
    if binary:
        y = (rng.standard_normal(x.shape) > 0).astype(float)
        p = 1 / (1 + np.exp(-x))
        return {
            "random": (y, p),
            "saturated 0/1": (y, y.copy()),
            "one minus eps": (y, np.where(y > 0, 1 - 1e-3, 1e-3)),
            "subnormals": (y, np.where(y > 0, 1.0, tiny / 4)),
            # ReLU outputs read as probabilities, all 0 where y is 0: the
            # loss is 0, but y * log(p) is 0 * -inf.
            "zeros": (np.zeros_like(y), np.zeros_like(x)),
        }
    hot = np.arange(ROWS) % CLASSES
    y = np.eye(CLASSES)[hot]
    p = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    return {
        "random": (y, p),
        "saturated one-hot": (y, y.copy()),
        "near saturated": (y, np.where(y > 0, 1.0, 1e-4)),
        "subnormals": (y, np.where(y > 0, 1.0, tiny / 4)),
        "ReLU zero rows": (y, np.zeros_like(x)),
    }


# --- the contenders --------------------------------------------------------


def _naive_distance(a, b):
    from keras import ops

    return ops.sqrt(ops.sum(ops.square(a - b), axis=-1))


def _naive_triplet(a, p, n):
    from keras import ops

    return ops.maximum(_naive_distance(a, p) - _naive_distance(a, n) + MARGIN, 0.0)


def _naive_contrastive(y, pairs):
    from keras import ops

    d = _naive_distance(pairs[:, 0], pairs[:, 1])
    return y * ops.square(d) + (1 - y) * ops.square(ops.maximum(MARGIN - d, 0.0))


def _naive_pairwise(x):
    """Pairwise distances as the tutorials write them (Moindrot's blog):
    ``|a|^2 - 2 a.b + |b|^2`` clamped at 0, sqrt with 1e-16 added at 0."""
    from keras import ops

    square = ops.sum(ops.square(x), axis=1)
    d2 = ops.maximum(square[:, None] - 2 * ops.matmul(x, ops.transpose(x))
                     + square[None, :], 0.0)
    zero = ops.cast(ops.equal(d2, 0.0), x.dtype)
    return ops.sqrt(d2 + zero * 1e-16) * (1 - zero)


def _label_masks(labels):
    from keras import ops

    same = ops.equal(labels[:, None], labels[None, :])
    eye = ops.eye(labels.shape[0], dtype="bool")
    return (ops.logical_and(same, ops.logical_not(eye)), ops.logical_not(same))


def _naive_mined(mining):
    from keras import ops

    def loss(labels, x):
        d = _naive_pairwise(x)
        positive, negative = _label_masks(labels)
        if mining == "batch_all":
            valid = ops.logical_and(positive[:, :, None], negative[:, None, :])
            terms = ops.maximum(d[:, :, None] - d[:, None, :] + MARGIN, 0.0)
            terms = terms * ops.cast(valid, x.dtype)
            return ops.sum(terms) / ops.sum(ops.cast(valid, x.dtype))
        if mining == "batch_hard":
            hardest_p = ops.max(d * ops.cast(positive, x.dtype), axis=1)
            far = ops.max(d, axis=1, keepdims=True)
            hardest_n = ops.min(d + far * ops.cast(~negative, x.dtype), axis=1)
            return ops.mean(ops.maximum(hardest_p - hardest_n + MARGIN, 0.0))
        d_ap = d[:, :, None]
        d_an = d[:, None, :]
        farther = ops.logical_and(negative[:, None, :], d_an > d_ap)
        nearest = ops.min(ops.where(farther, d_an, float("inf")), axis=2)
        farthest = ops.max(ops.where(negative, d, float("-inf")), axis=1)
        chosen = ops.where(ops.any(farther, axis=2), nearest, farthest[:, None])
        terms = ops.maximum(d - chosen + MARGIN, 0.0) * ops.cast(positive, x.dtype)
        return ops.sum(terms) / ops.sum(ops.cast(positive, x.dtype))

    return loss


def _naive_infonce(labels, x, temperature):
    """The `infonce` benchmark suite's keras.ops formula, mean over anchors."""
    from keras import ops

    unit = x / ops.norm(x, axis=-1, keepdims=True)
    logits = ops.matmul(unit, ops.transpose(unit)) / temperature
    eye = ops.eye(x.shape[0], dtype="bool")
    logits = ops.where(eye, float("-inf"), logits)
    log_prob = logits - ops.logsumexp(logits, axis=1, keepdims=True)
    positives = ops.logical_and(
        ops.equal(labels[:, None], labels[None, :]), ops.logical_not(eye))
    total = ops.sum(ops.where(positives, log_prob, 0.0), axis=1)
    return ops.mean(-total / ops.sum(ops.cast(positives, x.dtype), axis=1))


def _pml_distance():
    from pytorch_metric_learning.distances import LpDistance

    return LpDistance(normalize_embeddings=False)


def _pml_triplet(a, p, n):
    import torch
    from pytorch_metric_learning.losses import TripletMarginLoss
    from pytorch_metric_learning.reducers import MeanReducer

    module = TripletMarginLoss(margin=MARGIN, distance=_pml_distance(),
                               reducer=MeanReducer())
    index = torch.arange(a.shape[0])
    labels = torch.cat([index, index, index + a.shape[0]])
    return module(torch.cat([a, p, n]), labels,
                  (index, index + a.shape[0], index + 2 * a.shape[0]))


def _pml_mined(mining):
    def loss(labels, x):
        import torch
        from pytorch_metric_learning.losses import TripletMarginLoss
        from pytorch_metric_learning.miners import BatchHardMiner
        from pytorch_metric_learning.reducers import MeanReducer

        module = TripletMarginLoss(margin=MARGIN, distance=_pml_distance(),
                                   reducer=MeanReducer())
        labels = torch.as_tensor(labels).long()
        if mining == "batch_hard":
            triplets = BatchHardMiner(distance=_pml_distance())(x, labels)
            return module(x, labels, triplets)
        return module(x, labels)

    return loss


def _pml_infonce(kind, temperature):
    def loss(labels, x):
        import torch
        from pytorch_metric_learning import losses

        module = (losses.NTXentLoss if kind == "ntxent" else losses.SupConLoss)(
            temperature=temperature)
        return module(x, torch.as_tensor(labels).long())

    return loss


# --- the problems: cases, reference, contenders ----------------------------


def _problems():
    """[(loss, kind, cases(dtype), reference(inputs, dtype), contenders)].

    A case is ``(targets or None, differentiated input, kwargs)``; a
    contender is ``(backends or None for all, fn(targets, x, **kwargs))``.
    `kind` is "relative" or "norm-scaled".
    """
    import safeloss
    from safeloss.losses import reduce_losses
    from tests import references as ref

    def pair_cases(dtype):
        cases = _embedding_cases(dtype, 2)
        return {k: (None, np.stack(v, axis=0), {}) for k, v in cases.items()}

    def triplet_cases(dtype):
        cases = _embedding_cases(dtype, 3)
        return {k: (None, np.stack(v, axis=0), {}) for k, v in cases.items()}

    def contrastive_cases(dtype):
        y = np.arange(ROWS) % 2 == 0
        return {k: (y.astype(float), np.stack(v, axis=1), {})
                for k, v in _embedding_cases(dtype, 2).items()}

    def distance_ref(y, x, dtype):
        return np.array([ref.pair_distance(a, b, "euclidean", dtype)
                         for a, b in zip(x[0], x[1])])

    def triplet_ref(y, x, dtype):
        return ref.triplet(x[0], x[1], x[2], MARGIN, "euclidean", False, dtype)

    def contrastive_ref(y, x, dtype):
        d = [ref.pair_distance(a, b, "euclidean", dtype) for a, b in x]
        return ref.contrastive(y, np.array(d), MARGIN, dtype)

    def batch_cases(dtype):
        return {k: (BATCH_LABELS, v, {})
                for k, v in _batch_cases(dtype, (8, DIM)).items()}

    def infonce_cases(dtype):
        cases = batch_cases(dtype)
        y, x, _ = cases["random"]
        cases["low temperature 0.01"] = (y, x, {"temperature": LOW_TEMPERATURE})
        return cases

    def mined_ref(mining):
        def reference(y, x, dtype):
            d = ref.pairwise(x, "euclidean", dtype)
            return np.mean(ref.mined_triplet_loss(d, y, mining))

        return reference

    def ntxent_ref(y, x, dtype, temperature=TEMPERATURE):
        return np.mean(ref.ntxent(x.reshape(4, 2, -1), temperature, dtype))

    def supcon_ref(y, x, dtype, temperature=TEMPERATURE):
        return np.mean(ref.supcon(y, x, temperature, dtype))

    def ce_ref(name, from_logits):
        def reference(y, x, dtype):
            if name == "binary":
                return ref.binary_crossentropy(y, x, from_logits, dtype)
            if name == "sparse":
                y = np.eye(CLASSES)[y]
            return ref.categorical_crossentropy(y, x, from_logits, dtype)

        return reference

    def sparse_cases(dtype):
        return {k: (np.argmax(y, -1).astype(np.int32), x, {})
                for k, (y, x) in _logit_cases(dtype, False).items()}

    def dense(cases):
        return lambda dtype: {k: (y, x, {}) for k, (y, x) in cases(dtype).items()}

    from keras import ops

    def mean_of(fn):
        # safeloss's own reduction, as its Loss classes apply it: a plain
        # mean of per-anchor values near the largest float overflows.
        return lambda y, x, **kw: reduce_losses(fn(y, x, **kw))

    problems = [
        ("euclidean distance", "relative", pair_cases, distance_ref, {
            "safeloss": (None, lambda y, x: safeloss.paired_distances(x[0], x[1])),
            "naive": (None, lambda y, x: _naive_distance(x[0], x[1])),
            "torch.pairwise_distance": (("torch",), lambda y, x:
                __import__("torch").nn.functional.pairwise_distance(x[0], x[1])),
        }),
        ("triplet", "relative", triplet_cases, triplet_ref, {
            "safeloss": (None, lambda y, x: safeloss.triplet_loss(x[0], x[1], x[2])),
            "naive": (None, lambda y, x: _naive_triplet(x[0], x[1], x[2])),
            "optax": (("jax",), lambda y, x: __import__("optax").losses
                      .triplet_margin_loss(x[0], x[1], x[2], margin=MARGIN)),
            "torch.triplet_margin_loss": (("torch",), lambda y, x:
                __import__("torch").nn.functional.triplet_margin_loss(
                    x[0], x[1], x[2], margin=MARGIN, reduction="none")),
            "pml (mean)": (("torch",), lambda y, x: _pml_triplet(x[0], x[1], x[2])),
        }),
        ("contrastive", "relative", contrastive_cases, contrastive_ref, {
            "safeloss": (None, lambda y, x: safeloss.contrastive_loss(y, x)),
            "naive": (None, _naive_contrastive),
        }),
    ]
    for mining in ("batch_all", "batch_hard", "semi_hard"):
        contenders = {
            "safeloss": (None, mean_of(safeloss.MINED_TRIPLET_LOSSES[mining])),
            "naive": (None, _naive_mined(mining)),
        }
        if mining != "semi_hard":  # PML's semi-hard is another definition
            contenders["pml"] = (("torch",), _pml_mined(mining))
        problems.append((f"mined {mining}", "norm-scaled", batch_cases,
                         mined_ref(mining), contenders))

    def ntxent_views(fn):
        return lambda y, x, temperature=TEMPERATURE: fn(
            None, ops.reshape(x, (4, 2, -1)), temperature=temperature)

    problems += [
        ("ntxent", "relative", infonce_cases, ntxent_ref, {
            "safeloss": (None, mean_of(ntxent_views(safeloss.ntxent_loss))),
            "naive": (None, lambda y, x, temperature=TEMPERATURE:
                      _naive_infonce(y, x, temperature)),
            "optax": (("jax",), lambda y, x, temperature=TEMPERATURE:
                      __import__("optax").losses.ntxent(x, y, temperature)),
            "pml": (("torch",), lambda y, x, temperature=TEMPERATURE:
                    _pml_infonce("ntxent", temperature)(y, x)),
        }),
        ("supcon", "relative", infonce_cases, supcon_ref, {
            "safeloss": (None, lambda y, x, temperature=TEMPERATURE: reduce_losses(
                safeloss.supcon_loss(y, x, temperature=temperature))),
            "naive": (None, lambda y, x, temperature=TEMPERATURE:
                      _naive_infonce(y, x, temperature)),
            "pml": (("torch",), lambda y, x, temperature=TEMPERATURE:
                    _pml_infonce("supcon", temperature)(y, x)),
        }),
    ]
    for name, inputs in (("categorical", "logits"), ("categorical", "probabilities"),
                         ("sparse", "logits"), ("binary", "logits"),
                         ("binary", "probabilities")):
        from_logits = inputs == "logits"
        if name == "sparse":
            cases = sparse_cases
        elif from_logits:
            cases = dense(lambda dtype, b=name == "binary": _logit_cases(dtype, b))
        else:
            cases = dense(lambda dtype, b=name == "binary": _probability_cases(dtype, b))
        backends = {"safeloss": None, "naive": None, "keras": None}
        if from_logits:
            backends["optax"] = ("jax",)
        if from_logits or name == "binary":
            backends["torch.functional"] = ("torch",)
        contenders = {
            contender: (on, crossentropy.function(contender, name, from_logits))
            for contender, on in backends.items()}
        problems.append((f"{name} CE ({inputs})", "relative", cases,
                         ce_ref(name, from_logits), contenders))
    return problems


# --- measuring (in the child) ----------------------------------------------


def _numpy_dtype(dtype):
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _error(value, reference, kind, dtype, x):
    from safeloss.testing.tolerances import TOLERANCES

    v = np.asarray(value, np.float64).reshape(-1)
    r = np.asarray(reference, np.float64).reshape(-1)
    if v.size == 1 and r.size > 1:
        # A peer that returns only the mean (pytorch-metric-learning).
        with np.errstate(over="ignore"):
            r = np.mean(r, keepdims=True)
    both = np.isfinite(v) & np.isfinite(r)
    if not both.any():
        return None
    if kind == "norm-scaled":
        rows = np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1])
        with np.errstate(over="ignore"):
            scale = float(np.max(np.linalg.norm(rows / max(np.max(np.abs(rows)), 1e-300), axis=1))
                          * np.max(np.abs(rows)))
        floor = np.maximum(np.abs(r[both]), scale)
    else:
        floor = np.maximum(np.abs(r[both]), TOLERANCES[dtype]["atol"])
    floor = np.maximum(floor, np.finfo(np.float64).tiny)
    return float(np.max(np.abs(v[both] - r[both]) / floor))


def reference_values(reference, y, x, dtype, kwargs):
    """The float64 references for input `x` (already rounded to `dtype`).

    Two inputs are read by convention, for every contender alike:

    * an entry below the dtype's smallest normal number may be kept or
      read as 0: TensorFlow and JAX flush float32 and bfloat16 subnormals
      on CPU and GPUs flush them too (safeloss's InfoNCE losses document
      the flush), while float16 computed in float32 and PyTorch's CPU keep
      them. Where `x` has such entries there are two references, `x` as
      given and flushed, and a contender is scored against the nearer;
    * an infinite entry is the limit of a finite one growing without
      bound: the reference is computed with the infinite entries at two
      huge magnitudes, and where the two values differ the limit is
      infinite (a +inf logit with target 0), so the value is inf and the
      row counts only in the NaN and inf columns; where they agree (a +inf
      logit on the target class) the limit is that value.

    Returns:
        A list of one or two float64 arrays.
    """
    _, tiny = _limits(dtype)
    x = np.asarray(x).astype(np.float64)
    flushed = np.where(np.abs(x) < tiny, 0.0, x)
    inputs = [x] if np.array_equal(flushed, x) else [x, flushed]
    return [_limit_of(reference, y, v, kwargs) for v in inputs]


def _limit_of(reference, y, x, kwargs):
    infinite = np.isinf(x)
    with np.errstate(all="ignore"):
        if not infinite.any():
            return np.asarray(reference(y, x, "float64", **kwargs), np.float64)
        # Below the references' float64 logit clip (max / 4), so both stay.
        huge = np.finfo(np.float64).max / 16
        first, second = (
            np.asarray(reference(y, np.where(infinite, np.sign(x) * h, x),
                                 "float64", **kwargs), np.float64)
            for h in (huge, huge / 2))
        settled = np.isclose(first, second, rtol=1e-12, atol=0.0)
        return np.where(settled, first, np.copysign(np.inf, first))


def measure(backend, dtypes):
    from keras import ops

    from safeloss.testing import value_and_grad

    rows = []
    for loss, kind, make_cases, reference, contenders in _problems():
        for dtype in dtypes:
            cases = make_cases(dtype)
            np_dtype = _numpy_dtype(dtype)
            rounded = {}
            for name, (y, x, kwargs) in cases.items():
                with np.errstate(over="ignore"):
                    if y is not None and np.asarray(y).dtype.kind == "f":
                        y = np.asarray(y).astype(np_dtype)
                    rounded[name] = (y, np.asarray(x).astype(np_dtype), kwargs)
            references = {}
            largest, _ = _limits(dtype)
            for name, (y, x, kwargs) in rounded.items():
                # The best answer in the dtype: a finite exact value beyond
                # its range saturates; an infinite one (an infinite input)
                # stays infinite, and the case counts only for NaN and inf.
                references[name] = [
                    np.where(np.isfinite(exact), np.clip(exact, -largest, largest), exact)
                    for exact in reference_values(reference, y, x, dtype, kwargs)]
            for contender, (backends, fn) in contenders.items():
                if backends is not None and backend not in backends:
                    continue
                row = {"loss": loss, "dtype": dtype, "backend": backend,
                       "contender": contender, "error_kind": kind,
                       "cases": len(rounded), "max_error": None,
                       "worst_case": None, "status": "ok",
                       "nan_value": [], "inf_value": [], "nan_grad": [],
                       "inf_grad": [], "errors": {}}
                for name, (y, x, kwargs) in rounded.items():
                    def run(x, y=y, kwargs=kwargs):
                        targets = None if y is None else ops.convert_to_tensor(y)
                        return fn(targets, x, **kwargs)

                    try:
                        value, (grad,) = value_and_grad(run, x)
                    except Exception as exc:  # a peer refusing a dtype
                        row["errors"][name] = f"{type(exc).__name__}: {exc}"[:120]
                        continue
                    value = np.asarray(value, np.float64)
                    grad = np.asarray(grad, np.float64)
                    for key, bad in (("nan_value", np.isnan(value).any()),
                                     ("inf_value", np.isinf(value).any()),
                                     ("nan_grad", np.isnan(grad).any()),
                                     ("inf_grad", np.isinf(grad).any())):
                        if bad:
                            row[key].append(name)
                    errors = [_error(value, r, kind, dtype, x) for r in references[name]]
                    errors = [e for e in errors if e is not None]
                    error = min(errors) if errors else None
                    if error is not None and (row["max_error"] is None
                                              or error > row["max_error"]):
                        row["max_error"], row["worst_case"] = error, name
                if row["errors"]:
                    row["status"] = f"error in {len(row['errors'])} of {len(rounded)} cases"
                rows.append(row)
                print(f"{backend} {loss} {dtype} {contender}: {row['max_error']}",
                      file=sys.stderr, flush=True)
    return rows


# --- the parent --------------------------------------------------------------


def _rate(row, key):
    ran = row["cases"] - len(row["errors"])
    return f"{len(row[key])}/{ran}" if ran else "-"


def _bad_cases(row):
    bad = row["nan_value"] + row["inf_value"] + row["nan_grad"] + row["inf_grad"]
    return sorted(set(bad), key=bad.index)


def markdown_table(rows):
    lines = [
        "| loss | dtype | backend | contender | largest error | worst case "
        "| NaN value | inf value | NaN grad | inf grad | cases with NaN or inf |",
        "|---|---|---|---|--:|---|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        error = "-" if row["max_error"] is None else f"{row['max_error']:.1e}"
        if row["status"] != "ok":
            error += f" ({row['status']})"
        cells = [row["loss"], row["dtype"], row["backend"], row["contender"],
                 error, row["worst_case"] or "-"] + [
            _rate(row, key) for key in ("nan_value", "inf_value", "nan_grad", "inf_grad")]
        cells.append(", ".join(_bad_cases(row)) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PEER_COLUMNS = (
    ("safeloss", ("safeloss",)),
    ("naive", ("naive",)),
    ("keras", ("keras",)),
    ("optax", ("optax",)),
    ("torch.nn.functional", ("torch.pairwise_distance",
                             "torch.triplet_margin_loss", "torch.functional")),
    ("pytorch-metric-learning", ("pml", "pml (mean)")),
)


def summary_table(rows):
    """One row per loss: per contender, the cases with a NaN or an inf
    (value or gradient) over every dtype and backend it ran on, and its
    largest float32 error; then safeloss's largest error per dtype."""
    losses = list(dict.fromkeys(row["loss"] for row in rows))
    lines = [
        "| loss | " + " | ".join(name for name, _ in PEER_COLUMNS)
        + " | safeloss largest error (float16 / bfloat16 / float32 / float64) |",
        "|---|" + "--:|" * len(PEER_COLUMNS) + "---|",
    ]
    for loss in losses:
        cells = [loss]
        for _, contenders in PEER_COLUMNS:
            group = [r for r in rows if r["loss"] == loss and r["contender"] in contenders]
            ran = sum(r["cases"] - len(r["errors"]) for r in group)
            bad = sum(len(_bad_cases(r)) for r in group)
            errors = [r["max_error"] for r in group
                      if r["dtype"] == "float32" and r["max_error"] is not None]
            error = f"{max(errors):.0e}" if errors else "-"
            cells.append(f"{bad}/{ran}, {error}" if ran else "-")
        errors = []
        for dtype in DTYPES:
            found = [r["max_error"] for r in rows if r["loss"] == loss
                     and r["contender"] == "safeloss" and r["dtype"] == dtype
                     and r["max_error"] is not None]
            errors.append(f"{max(found):.0e}" if found else "-")
        cells.append(" / ".join(errors))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


NOTES = """\
Reference: the float64 brute force of `tests/references.py` on the inputs
rounded to the dtype, saturated at the dtype's largest finite value. Two
inputs are read by convention, for every contender alike. An entry below
the dtype's smallest normal number may be kept or read as 0: TensorFlow
and JAX flush float32 and bfloat16 subnormals on CPU, GPUs do too (and
safeloss's NT-Xent and SupCon document the flush: a row of subnormals is a
zero row), while float16 computed in float32 and PyTorch's CPU keep them;
so a case with such entries is scored against the nearer of the two
answers. An infinite input is the limit of a finite one growing without
bound: where that limit of the loss is finite (a +inf logit on the target
class: 0; a -inf logit on another class: the loss without that class) it
is the reference, and where it is infinite (a +inf logit with binary
target 0) the row is left out of the "largest error" column and counts
only in the NaN and inf columns; safeloss's finite value there comes from
its documented logit clip at a quarter of the dtype's largest value.
Errors are relative, with the dtype's absolute tolerance as the floor;
for the mined triplet losses, relative to the batch's largest row norm.
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--dtype", nargs="+", choices=DTYPES, default=list(DTYPES))
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--markdown", metavar="PATH")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        with open(args.child, "w") as f:
            json.dump(measure(args.backend[0], args.dtype), f)
        return

    report = start_report(notes=NOTES, rows=[])
    for backend in args.backend:
        env = dict(os.environ, KERAS_BACKEND=backend, JAX_ENABLE_X64="1",
                   TF_CPP_MIN_LOG_LEVEL="2")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "rows.json")
            subprocess.run(
                [sys.executable, __file__, "--child", out, "--backend", backend,
                 "--dtype", *args.dtype], env=env, check=True)
            with open(out) as f:
                report["rows"] += json.load(f)
    finish_report(report, lambda report: summary_table(report["rows"]) + "\n"
                  + markdown_table(report["rows"]) + "\n" + NOTES + "\n"
                  + caption(report), args)


if __name__ == "__main__":
    main()
