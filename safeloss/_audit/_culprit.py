"""Which operation in a loss first turns a finite input into inf or NaN.

Each backend is asked with its own instruments, once for the loss value and
once for its gradient with respect to `y_pred`:

| backend    | instrument                                                     |
|------------|----------------------------------------------------------------|
| tensorflow | `tf.debugging.enable_check_numerics`: stops at the first op    |
|            | (gradient ops included, e.g. ``SqrtGrad``) with an inf or NaN  |
| jax        | the jaxpr of the value (then of its VJP) evaluated one         |
|            | equation at a time, the intermediate results checked           |
| torch      | a `TorchFunctionMode` on the forward pass; hooks on every      |
|            | autograd node under `torch.autograd.detect_anomaly`, which     |
|            | records where each node was created                            |

`find_culprit` returns the first `Event` (an operation whose inputs were
finite and whose output is not), and the first operation that made a NaN
when that differs (``exp`` overflows to inf, then ``inf - inf`` is NaN).
`describe` turns an event into the likely cause and the safeloss
replacement.
"""

import dataclasses
import os
import re
import traceback
import warnings

import keras
import numpy as np
from keras import backend


@dataclasses.dataclass
class Event:
    """An operation whose output holds a non-finite value."""

    op: str  # normalised name: sqrt, exp, log, divide, subtract, ...
    result: str  # "inf", "-inf" or "NaN"
    gradient: bool  # in the backward pass (or the derivative of `op`)
    location: str = None  # "file.py:line" in the audited file, when known


@dataclasses.dataclass
class Diagnosis:
    first: Event = None  # first non-finite result from finite inputs
    first_nan: Event = None  # first NaN, when `first` is an inf
    note: str = None  # why nothing was found, when nothing was


# Backend op names (TensorFlow op types, torch functions and autograd nodes,
# JAX primitives and Keras functions) to one vocabulary.
_ALIASES = {
    "realdiv": "divide", "div": "divide", "truediv": "divide",
    "true_divide": "divide", "divnonan": "divide", "reciprocal": "divide",
    "floordiv": "divide", "rtruediv": "divide", "rdiv": "divide",
    "sub": "subtract", "rsub": "subtract", "addv2": "add", "add_any": "add",
    "radd": "add", "addn": "add", "mul": "multiply", "rmul": "multiply",
    "pow": "power", "rpow": "power", "integer_pow": "power",
    "rsqrt": "sqrt", "expm1": "exp", "exp2": "exp", "log1p": "log",
    "log2": "log", "log10": "log", "reduce_sum": "sum", "dot_general": "matmul",
    "batchmatmulv2": "matmul", "einsum": "matmul", "dot": "matmul",
    "squareddifference": "square",
}

KNOWN_OPS = frozenset(
    ["sqrt", "exp", "log", "divide", "subtract", "add", "multiply", "power",
     "square", "sum", "matmul"]
)


def normalise(name):
    """``SqrtGrad``, ``SqrtBackward0``, ``__rtruediv__`` -> (``sqrt``, ``divide``...)."""
    name = name.strip("_").lower()
    name = re.sub(r"(backward\d*|grad)$", "", name)
    return _ALIASES.get(name, name)


def find_culprit(loss, y_true, y_pred, audited_file):
    """Runs `loss` eagerly on the inputs and returns a `Diagnosis`."""
    finder = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}[
        backend.backend()
    ]
    located = _Locator(audited_file)
    try:
        return finder(loss, y_true, y_pred, located)
    except Exception as error:  # a diagnosis must never hide the failure
        return Diagnosis(note=f"the trace failed: {type(error).__name__}: {error}")


class _Locator:
    """Finds the audited file's line in a stack."""

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def __call__(self, frames):
        """`frames`: (filename, line) pairs, innermost last."""
        for filename, line in reversed(list(frames)):
            if os.path.abspath(filename) == self.path:
                return f"{os.path.basename(filename)}:{line}"
        return None


def _kind(values):
    values = np.asarray(values, np.float64)
    if np.isnan(values).any():
        return "NaN"
    return "-inf" if (values == -np.inf).any() and not (values == np.inf).any() else "inf"


def _finite(values):
    values = np.asarray(values)
    if values.dtype.kind in "biu":
        return True
    try:
        return bool(np.all(np.isfinite(values.astype(np.float64))))
    except (TypeError, ValueError):  # opaque values (PRNG keys, tokens)
        return True


def _has_nan(values):
    values = np.asarray(values)
    if values.dtype.kind in "biu":
        return False
    try:
        return bool(np.any(np.isnan(values.astype(np.float64))))
    except (TypeError, ValueError):
        return False


def _is_origin(inputs, bad):
    """The op made the first inf/NaN from finite inputs, or the first NaN
    from inputs without one (``inf - inf``, ``0 * inf``)."""
    if all(_finite(i) for i in inputs):
        return True
    return _kind(bad[0]) == "NaN" and not any(_has_nan(i) for i in inputs)


def _record(diagnosis, event):
    if diagnosis.first is None:
        diagnosis.first = event
    if event.result == "NaN" and diagnosis.first_nan is None:
        diagnosis.first_nan = event


def _finish(diagnosis):
    if diagnosis.first_nan is diagnosis.first:
        diagnosis.first_nan = None
    if diagnosis.first is None:
        diagnosis.note = "no operation produced inf or NaN when run eagerly"
    return diagnosis


# ---- TensorFlow: tf.debugging.enable_check_numerics -------------------------

_TF_OP = re.compile(r'op "(\w+)"')


def _tensorflow(loss, y_true, y_pred, locate):
    import tensorflow as tf

    diagnosis = Diagnosis()
    y_true = tf.convert_to_tensor(y_true)
    y_pred = tf.convert_to_tensor(y_pred)
    for gradient in (False, True):
        tf.debugging.enable_check_numerics()
        try:
            with tf.GradientTape() as tape:
                tape.watch(y_pred)
                value = loss(y_true, y_pred)
            if gradient:
                tape.gradient(value, y_pred)
        except tf.errors.InvalidArgumentError as error:
            found = _TF_OP.search(str(error))
            if not found:
                raise
            message = str(error)
            result = "NaN" if "NaN elements" in message else (
                "-inf" if "-Inf elements" in message and "+Inf" not in message else "inf"
            )
            op = found.group(1)
            frames = [(f.filename, f.lineno) for f in traceback.extract_tb(error.__traceback__)]
            # Check numerics stops at the first bad op, so there is no
            # second event to report: the first is what matters.
            _record(diagnosis, Event(
                normalise(op), result, gradient or op.endswith("Grad"), locate(frames)
            ))
            return _finish(diagnosis)
        finally:
            tf.debugging.disable_check_numerics()
    return _finish(diagnosis)


# ---- JAX: the jaxpr, one equation at a time ---------------------------------


def _jax(loss, y_true, y_pred, locate):
    import jax
    import jax.numpy as jnp

    y_true = jnp.asarray(y_true)
    y_pred = jnp.asarray(y_pred)

    def value(prediction):
        return loss(y_true, prediction)

    def value_and_gradient(prediction):
        result, pullback = jax.vjp(value, prediction)
        return result, pullback(jnp.ones_like(result))

    diagnosis = Diagnosis()
    for gradient, function in ((False, value), (True, value_and_gradient)):
        closed = jax.make_jaxpr(function)(y_pred)
        _walk_jaxpr(closed.jaxpr, closed.consts, [y_pred], gradient, diagnosis, locate)
        if diagnosis.first is not None:
            break
    return _finish(diagnosis)


def _walk_jaxpr(jaxpr, consts, args, gradient, diagnosis, locate):
    from jax.extend import core as jcore

    env = {}

    def read(var):
        return var.val if isinstance(var, jcore.Literal) else env[var]

    for var, val in zip(jaxpr.constvars, consts):
        env[var] = val
    for var, val in zip(jaxpr.invars, args):
        env[var] = val
    for eqn in jaxpr.eqns:
        inputs = [read(v) for v in eqn.invars]
        inner = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
        if isinstance(inner, jcore.ClosedJaxpr) and len(inner.jaxpr.invars) == len(inputs):
            outputs = _walk_jaxpr(inner.jaxpr, inner.consts, inputs, gradient, diagnosis, locate)
        else:
            outputs = eqn.primitive.bind(*inputs, **eqn.params)
            if not eqn.primitive.multiple_results:
                outputs = [outputs]
            bad = [o for o in outputs if not _finite(o)]
            if bad and _is_origin(inputs, bad):
                _record(diagnosis, _jax_event(eqn, bad, gradient, locate))
        for var, val in zip(eqn.outvars, outputs):
            env[var] = val
    return [read(v) for v in jaxpr.outvars]


def _jax_event(eqn, bad, gradient, locate):
    from jax._src import source_info_util

    frames = list(source_info_util.user_frames(eqn.source_info.traceback))
    # The innermost Keras function names the op the user called (the `div`
    # in the derivative of `ops.sqrt` is reported as sqrt), unless it is a
    # composite (a whole Keras loss), where the primitive says more.
    op = normalise(eqn.primitive.name)
    for frame in frames:
        if f"{os.sep}keras{os.sep}" in frame.file_name:
            if normalise(frame.function_name) in KNOWN_OPS:
                op = normalise(frame.function_name)
            break
    located = locate((f.file_name, f.start_line) for f in reversed(frames))
    return Event(op, _kind(bad[0]), gradient, located)


# ---- PyTorch: a function mode forward, autograd node hooks backward ---------


def _torch(loss, y_true, y_pred, locate):
    import torch
    from torch.overrides import TorchFunctionMode

    diagnosis = Diagnosis()

    def observe(name, inputs, outputs, gradient, frames):
        outputs = [_tensor_numpy(o) for o in outputs if _is_tensor(o)]
        bad = [o for o in outputs if not _finite(o)]
        inputs = [_tensor_numpy(i) for i in inputs if _is_tensor(i)]
        if bad and _is_origin(inputs, bad):
            _record(diagnosis, Event(normalise(name), _kind(bad[0]), gradient, locate(frames)))

    class Forward(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            output = func(*args, **(kwargs or {}))
            outputs = output if isinstance(output, (tuple, list)) else [output]
            if diagnosis.first is None or diagnosis.first_nan is None:
                stack = [(f.filename, f.lineno) for f in traceback.extract_stack()]
                observe(getattr(func, "__name__", str(func)), list(args), outputs, False, stack)
            return output

    prediction = keras.ops.convert_to_tensor(y_pred).detach().requires_grad_(True)
    labels = keras.ops.convert_to_tensor(y_true)
    with warnings.catch_warnings():
        # detect_anomaly warns that it is slow; it runs once, on one input.
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly(check_nan=False), Forward():
            value = loss(labels, prediction)
    if diagnosis.first is not None or not value.requires_grad:
        return _finish(diagnosis)

    def hook_for(node):
        def hook(grad_inputs, grad_outputs):
            trace = node.metadata.get("traceback_", [])
            frames = [
                (m.group(1), int(m.group(2)))
                for m in (re.search(r'File "(.+)", line (\d+)', line) for line in trace)
                if m
            ]
            observe(node.name(), list(grad_outputs), list(grad_inputs), True, frames)

        return hook

    seen, pending = set(), [value.grad_fn]
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        node.register_hook(hook_for(node))
        pending += [parent for parent, _ in node.next_functions]
    torch.autograd.grad(value, prediction, torch.ones_like(value), allow_unused=True)
    return _finish(diagnosis)


def _is_tensor(x):
    import torch

    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _tensor_numpy(x):
    return x.detach().double().cpu().numpy()


# ---- from an event to a cause and a replacement -----------------------------

_SQRT_FIX = (
    "safeloss.ops.safe_sqrt (finite slope at 0), safeloss.ops.safe_norm for "
    "||x||, safeloss.paired_distances(a, b) for ||a - b||"
)
_OVERFLOW_FIX = (
    "safeloss.ops.safe_norm / safeloss.paired_distances (scaled, cannot "
    "overflow), safeloss.ops.saturating_multiply"
)


def describe(event):
    """``(cause, explanation, replacement)`` for an event."""
    op, result = event.op, event.result
    if op in ("multiply", "power", "square", "matmul", "sum") and result == "NaN":
        return (
            "0 * inf",
            "an infinite factor (often an infinite slope) met a zero one",
            _SQRT_FIX,
        )
    if op in ("sqrt", "power") and (event.gradient or result == "inf" and op == "sqrt"):
        return (
            "sqrt at 0",
            "the slope of sqrt is infinite at 0 (identical embeddings, zero "
            "vectors), and the chain rule then computes 0 * inf = NaN",
            _SQRT_FIX,
        )
    if op == "sqrt":
        return (
            "sqrt of a negative number",
            "round-off made a squared distance slightly negative",
            _SQRT_FIX + "; safeloss.pairwise_distances clamps the Gram round-off",
        )
    if op == "exp":
        return (
            "exp overflow",
            "exp(x) is inf above 88.7 in float32 (11.1 in float16)",
            "safeloss.ops.softplus for log(1 + exp(x)), safeloss.ops.logsumexp "
            "for log(sum(exp(x))), safeloss.ops.clip_logits",
        )
    if op == "log":
        cause = "log of a negative number" if result == "NaN" and not event.gradient else "log of 0"
        return (
            cause,
            "log(0) is -inf and its slope 1/x is infinite; a probability or "
            "a sum of exponentials reached 0",
            "safeloss.ops.safe_log, safeloss.ops.softplus, safeloss.ops.logsumexp",
        )
    if op == "divide":
        if result == "NaN":
            return (
                "0/0",
                "a zero numerator over a zero denominator (an all-zero row "
                "normalised by its sum, a zero vector by its norm)",
                "safeloss.ops.safe_divide, safeloss.ops.l2_normalize",
            )
        if event.gradient:
            # TensorFlow computes the slope of log as reciprocal(x): the
            # same op stands for a division and for log at 0.
            return (
                "division by 0",
                "a slope 1/x (of log, or of a division) reached x = 0",
                "safeloss.ops.safe_divide, safeloss.ops.safe_log",
            )
        return (
            "division by 0",
            "a denominator reached 0",
            "safeloss.ops.safe_divide, safeloss.ops.l2_normalize",
        )
    if op in ("subtract", "add") and result == "NaN":
        return (
            "inf - inf",
            "two infinities of the same sign were subtracted (an overflowed "
            "max shift or an inf logit)",
            "safeloss.ops.logsumexp, safeloss.ops.clip_logits",
        )
    if op in ("multiply", "square", "power", "sum", "matmul", "add", "subtract"):
        return (
            f"overflow in {op}",
            "squares or products of large values exceed the dtype's range",
            _OVERFLOW_FIX,
        )
    return (
        f"{op} produced {result}",
        "an operation without a known safe replacement",
        "the safe primitives in safeloss.ops",
    )
