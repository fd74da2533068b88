"""The adversarial search: hypothesis draws inputs until the loss or its
gradient is not finite, then shrinks the input to the smallest that fails.
"""

import dataclasses
import sys
import time

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis.errors import Flaky

from safeloss.testing import value_and_grad

PROGRESS_EVERY_S = 2.0


@dataclasses.dataclass
class Finding:
    """What a failing input did."""

    y_true: np.ndarray
    y_pred: np.ndarray
    problems: list  # ("value" | "gradient", "NaN" | "inf", count, size)
    error: BaseException = None  # the loss raised instead of returning


@dataclasses.dataclass
class Outcome:
    examples: int  # inputs drawn before the first failure (or in all)
    calls: int  # evaluations, shrinking included
    finding: Finding = None


class _Failed(Exception):
    """Raised inside the hypothesis test so that it shrinks the input."""


def _non_finite(name, array):
    if array is None:
        return []
    values = np.asarray(array).astype(np.float64)
    problems = []
    for label, mask in (("NaN", np.isnan(values)), ("inf", np.isinf(values))):
        if mask.any():
            problems.append((name, label, int(mask.sum()), int(values.size)))
    return problems


def evaluate(loss, y_true, y_pred, compiled):
    """Returns a `Finding`, with no problems when everything is finite."""
    try:
        value, grads = value_and_grad(loss, y_true, y_pred, compiled=compiled)
    except Exception as error:  # the user's loss: any exception is theirs
        return Finding(y_true, y_pred, [], error)
    # Only the gradient with respect to y_pred trains a model; labels may
    # have a non-finite gradient (-log 0) harmlessly.
    problems = _non_finite("value", value) + _non_finite("gradient", grads[1])
    return Finding(y_true, y_pred, problems)


def search(loss, strategy, *, examples, seed_value, compiled, label):
    """Draws up to `examples` inputs from `strategy`; returns an `Outcome`.

    A failing input (non-finite value or gradient, or an exception) is shrunk
    by hypothesis; the finding returned is the smallest one. Progress goes to
    stderr every couple of seconds.
    """
    state = {"calls": 0, "examples": 0, "finding": None, "shown": time.monotonic()}

    @seed(seed_value)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def probe(case):
        y_true, y_pred = case
        state["calls"] += 1
        if state["finding"] is None:
            state["examples"] += 1
        _progress(state, examples, label)
        finding = evaluate(loss, y_true, y_pred, compiled)
        if finding.problems or finding.error is not None:
            # The last failing call is hypothesis' replay of the smallest.
            state["finding"] = finding
            raise _Failed()

    try:
        probe()
    except (_Failed, Flaky):
        pass
    return Outcome(state["examples"], state["calls"], state["finding"])


def _progress(state, examples, label):
    now = time.monotonic()
    if now - state["shown"] < PROGRESS_EVERY_S:
        return
    if state["finding"] is None:
        line = f"audit {label}: {state['examples']}/{examples} examples"
    else:
        line = (
            f"audit {label}: failure found at example {state['examples']}, "
            f"shrinking ({state['calls'] - state['examples']} steps)"
        )
    print(line, file=sys.stderr, flush=True)
    state["shown"] = now
