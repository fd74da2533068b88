"""``python -m safeloss audit FILE.py:FUNCTION --kind KIND``.

Searches for inputs on which a user's own Keras loss ``(y_true, y_pred)``
returns inf or NaN, or has a non-finite gradient with respect to `y_pred`,
with the strategies the safeloss tests use (extreme magnitudes, zero rows,
duplicated embeddings, anchors equal to positives, ReLU-like probabilities).
A failure is shrunk to the smallest failing input and explained: which
operation broke (`_culprit`), and which safeloss function replaces it.

Exit status: 0 when no failure was found, 1 when one was (so the command can
gate CI), 2 when the audit could not run (bad target, wrong signature, the
loss raised).
"""

import sys

import numpy as np

from safeloss._audit._target import KINDS, AuditError, load_loss

__all__ = ["AuditError", "KINDS", "audit", "load_loss"]

PASSED, FAILED, ERROR = 0, 1, 2


def audit(target, *, kind, dtypes=("float32",), batch=4, dim=3, classes=3,
          examples=100, seed=0, compiled=False, out=None):
    """Audits the loss named by `target` and prints a report to `out`.

    Args:
        target: ``"FILE.py:FUNCTION"``.
        kind: one of `KINDS`: what `y_pred` is.
        dtypes: the dtypes to audit, in turn.
        batch, dim, classes: the fixed input shape.
        examples: inputs drawn per dtype (before shrinking).
        seed: the hypothesis seed; a run is reproducible.
        compiled: evaluate under XLA / `jax.jit` (TensorFlow, JAX).
        out: a text stream (default: stdout).

    Returns:
        The exit status: 0 passed, 1 a failure was found, 2 could not run.
    """
    import keras

    from safeloss._audit import _culprit, _search
    from safeloss.testing import COMPILED_BACKENDS

    out = out or sys.stdout
    try:
        if kind not in KINDS:
            raise AuditError(f"Unknown --kind {kind!r}; expected one of {tuple(KINDS)}.")
        for name, value in (("batch", batch), ("dim", dim), ("classes", classes), ("examples", examples)):
            if value < 1:
                raise AuditError(f"--{name} must be at least 1, received {value}.")
        backend = keras.backend.backend()
        if compiled and backend not in COMPILED_BACKENDS:
            raise AuditError(
                f"--compiled needs one of {COMPILED_BACKENDS}; the backend is {backend!r}."
            )
        loss = load_loss(target)
    except AuditError as error:
        print(f"safeloss audit: error: {error}", file=out)
        return ERROR
    if "float64" in dtypes and backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)

    spec = KINDS[kind]
    path = target.rpartition(":")[0]
    status = PASSED
    mode = "compiled" if compiled else "eager"
    for dtype in dtypes:
        label = f"{target} ({kind}, {dtype}, {backend}, {mode})"
        print(f"safeloss audit: {label}", file=out)
        print(f"  y_pred {spec.y_pred}; y_true {spec.y_true}", file=out)
        outcome = _search.search(
            loss, spec.draw(dtype, batch, dim, classes), examples=examples,
            seed_value=seed, compiled=compiled, label=f"{dtype}",
        )
        finding = outcome.finding
        if finding is None:
            print(
                f"  PASSED: loss and gradient finite on {outcome.examples} examples.",
                file=out,
            )
            continue
        _print_input(finding, out)
        if finding.error is not None:
            error = finding.error
            print(
                f"  ERROR: the loss raised {type(error).__name__}: {error}",
                file=out,
            )
            print(
                "  Check that --kind matches what the loss expects "
                f"(y_pred {spec.y_pred}).",
                file=out,
            )
            return ERROR
        status = FAILED
        what = ", ".join(
            f"{part} has {count} {problem} of {size}"
            for part, problem, count, size in finding.problems
        )
        print(
            f"  FAILED at example {outcome.examples} (shrunk in "
            f"{outcome.calls - outcome.examples} steps): {what}.",
            file=out,
        )
        diagnosis = _culprit.find_culprit(loss, finding.y_true, finding.y_pred, path)
        _print_diagnosis(diagnosis, spec, out)
    return status


def _print_input(finding, out):
    print("  Smallest failing input:", file=out)
    with np.printoptions(precision=6, threshold=200, linewidth=100):
        for name, array in (("y_true", finding.y_true), ("y_pred", finding.y_pred)):
            body = repr(np.asarray(array).astype(np.float64) if array.dtype.kind == "V" else array)
            body = body.replace("\n", "\n" + " " * 6)
            print(f"    {name} = {body}", file=out)


def _print_diagnosis(diagnosis, spec, out):
    from safeloss._audit._culprit import describe

    if diagnosis.first is None:
        print(f"  Likely culprit: not identified ({diagnosis.note}).", file=out)
        print("  Use instead: the safe primitives in safeloss.ops.", file=out)
        _print_losses(spec, out)
        return
    cause, why, fix = describe(diagnosis.first)
    print(f"  Likely culprit: {cause}: {why}.", file=out)
    print(f"    first non-finite result: {_where(diagnosis.first)}", file=out)
    if diagnosis.first_nan is not None:
        nan_cause, _, _ = describe(diagnosis.first_nan)
        print(f"    then NaN from {nan_cause}: {_where(diagnosis.first_nan)}", file=out)
    print(f"  Use instead: {fix}.", file=out)
    _print_losses(spec, out)


def _where(event):
    part = "the gradient of " if event.gradient else ""
    place = f" at {event.location}" if event.location else ""
    return f"{part}{event.op} gave {event.result}{place}"


def _print_losses(spec, out):
    import safeloss

    available = [f"safeloss.{name}" for name in spec.losses if hasattr(safeloss, name)]
    if available:
        print(f"  Or replace the whole loss: {', '.join(available)}.", file=out)
