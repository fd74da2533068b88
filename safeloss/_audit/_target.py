"""What `python -m safeloss audit` checks: the user's loss and its inputs.

`load_loss("losses.py:my_loss")` imports a file by path and returns the
named callable, after checking that it takes ``(y_true, y_pred)`` as Keras
losses do. Every problem is an `AuditError` with a message for the user, not
a traceback.

`KINDS` says, for each ``--kind``, how ``(y_true, y_pred)`` are drawn from
`safeloss.testing.strategies` and which safeloss losses replace a
hand-written one of that kind.
"""

import dataclasses
import importlib.util
import inspect
import os
import sys
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from safeloss.testing import strategies as S


class AuditError(Exception):
    """A problem with the audit's target or arguments, shown as its message."""


def load_loss(target):
    """The callable named by ``"FILE.py:NAME"``, checked to take two arguments.

    Raises:
        AuditError: the target is malformed, the file is missing or fails
            to import, the name is missing or not callable, or its signature
            does not accept ``(y_true, y_pred)``.
    """
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise AuditError(
            f"Expected FILE.py:FUNCTION (for example losses.py:triplet_loss), "
            f"received {target!r}."
        )
    if not os.path.isfile(path):
        raise AuditError(f"No such file: {path!r} (from {target!r}).")
    module_name = "_safeloss_audit_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:
        raise AuditError(f"{path!r} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    # The directory of the file comes first on the path, as for `python FILE`,
    # so the file's own sibling imports work.
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's module: any exception is theirs
        raise AuditError(
            f"Importing {path!r} failed: {type(error).__name__}: {error}"
        ) from None
    finally:
        sys.path.pop(0)
    if not hasattr(module, name):
        public = sorted(
            n for n, v in vars(module).items()
            if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module_name
        )
        raise AuditError(
            f"{path!r} has no {name!r}; functions defined there: "
            f"{', '.join(public) or 'none'}."
        )
    loss = getattr(module, name)
    if not callable(loss):
        raise AuditError(
            f"{name!r} in {path!r} is a {type(loss).__name__}, not a function."
        )
    check_signature(loss, name)
    return loss


def check_signature(loss, name):
    """Raises AuditError unless `loss` can be called as ``loss(y_true, y_pred)``."""
    try:
        signature = inspect.signature(loss)
    except (TypeError, ValueError):
        return  # builtins without a signature: the first call will tell
    try:
        signature.bind(None, None)
    except TypeError:
        raise AuditError(
            f"{name!r} must take the Keras loss arguments (y_true, y_pred); "
            f"its signature is {name}{signature}."
        ) from None


@dataclasses.dataclass(frozen=True)
class Kind:
    """One value of ``--kind``."""

    name: str
    y_pred: str  # the shape of y_pred, for the help text and the report
    y_true: str
    draw: Callable  # (dtype, batch, dim, classes) -> strategy of (y_true, y_pred)
    losses: tuple  # safeloss classes replacing a hand-written loss of this kind


def _ignored_targets(dtype, batch):
    return st.just(np.zeros((batch,), S.numpy_dtype(dtype)))


def _one_hot(dtype, batch, classes):
    return st.lists(
        st.integers(0, classes - 1), min_size=batch, max_size=batch
    ).map(lambda rows: np.eye(classes, dtype=S.numpy_dtype(dtype))[rows])


def _binary(dtype, batch):
    return st.lists(st.integers(0, 1), min_size=batch, max_size=batch).map(
        lambda bits: np.asarray(bits).astype(S.numpy_dtype(dtype))
    )


KINDS = {
    kind.name: kind
    for kind in [
        Kind(
            "triplet", "(batch, 3, dim): anchor, positive, negative",
            "zeros (batch,), ignored",
            lambda dtype, batch, dim, classes: st.tuples(
                _ignored_targets(dtype, batch),
                S.stacked_embeddings(dtype, 3, (batch, dim)),
            ),
            ("TripletLoss",),
        ),
        Kind(
            "pairs", "(batch, 2, dim): two embeddings per pair",
            "(batch,) 1 for similar pairs, 0 for dissimilar",
            lambda dtype, batch, dim, classes: st.tuples(
                _binary(dtype, batch),
                S.stacked_embeddings(dtype, 2, (batch, dim)),
            ),
            ("ContrastiveLoss",),
        ),
        Kind(
            "embeddings", "(batch, dim)", "(batch,) int32 class labels",
            lambda dtype, batch, dim, classes: st.tuples(
                S.labels(batch, classes), S.embeddings(dtype, (batch, dim))
            ),
            ("TripletSemiHardLoss", "TripletHardLoss", "SupConLoss"),
        ),
        Kind(
            "logits", "(batch, classes): unnormalised scores", "(batch, classes) one-hot",
            lambda dtype, batch, dim, classes: st.tuples(
                _one_hot(dtype, batch, classes), S.logits(dtype, (batch, classes))
            ),
            ("CategoricalCrossentropy",),
        ),
        Kind(
            "probabilities",
            "(batch, classes): non-negative scores (softmax or ReLU outputs)",
            "(batch, classes) one-hot",
            lambda dtype, batch, dim, classes: st.tuples(
                _one_hot(dtype, batch, classes),
                S.probabilities(dtype, (batch, classes)),
            ),
            ("CategoricalCrossentropy",),
        ),
    ]
}
