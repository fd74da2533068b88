"""`python -m safeloss audit`: run in-process on the active backend.

The losses audited live in `tests/audit_losses.py`: hand-written ones with a
known failure (the audit must exit 1 and name the cause) and safe ones built
from safeloss primitives (the audit must exit 0). Small --examples keep each
run to a few seconds; the inputs have one fixed shape, so JAX compiles each
op once.
"""

import os
import sys

import keras
import pytest

from safeloss.__main__ import main
from safeloss._audit._culprit import normalise
from tests.audit_losses import SAFE_LOSSES

BACKEND = keras.backend.backend()
LOSSES_FILE = os.path.join(os.path.dirname(__file__), "audit_losses.py")
EXAMPLES = "20"


def audit(capsys, name, kind, *extra):
    status = main(
        ["audit", f"{LOSSES_FILE}:{name}", "--kind", kind, "--backend", BACKEND,
         "--examples", EXAMPLES, *extra]
    )
    return status, capsys.readouterr().out


@pytest.mark.parametrize(
    "name, kind, part, cause, replacement",
    [
        ("naive_triplet", "triplet", "gradient has", "sqrt at 0", "safeloss.ops.safe_sqrt"),
        ("relu_crossentropy", "probabilities", "value has", "0/0", "safeloss.ops.safe_divide"),
        ("naive_softplus", "logits", "value has", "exp overflow", "safeloss.ops.softplus"),
        ("naive_log_likelihood", "probabilities", "", "log of 0", "safeloss.ops.safe_log"),
    ],
)
def test_hand_written_losses_fail_with_their_cause(capsys, name, kind, part, cause, replacement):
    status, out = audit(capsys, name, kind)
    assert status == 1, out
    assert "FAILED" in out and part in out
    assert "Smallest failing input:" in out and "y_pred = array(" in out
    causes = [cause]
    if BACKEND == "tensorflow" and cause == "log of 0":
        # TensorFlow differentiates log with a Reciprocal op, which names
        # no log; the replacement printed still includes safe_log.
        causes.append("division by 0")
    assert any(f"Likely culprit: {c}:" in out for c in causes), out
    assert replacement in out


def test_naive_triplet_points_at_the_sqrt(capsys):
    _, out = audit(capsys, "naive_triplet", "triplet")
    assert "first non-finite result: the gradient of sqrt gave" in out, out
    if BACKEND != "tensorflow":
        # TensorFlow's check numerics names the op (SqrtGrad) but not the
        # Python line of a gradient op.
        with open(LOSSES_FILE) as source:
            sqrt_lines = [n for n, line in enumerate(source, 1) if "ops.sqrt(" in line]
        assert any(f"audit_losses.py:{n}" in out for n in sqrt_lines), out


@pytest.mark.parametrize("name, kind", SAFE_LOSSES)
def test_safe_losses_pass(capsys, name, kind):
    status, out = audit(capsys, name, kind)
    assert status == 0, out
    assert f"PASSED: loss and gradient finite on {EXAMPLES} examples." in out


def test_every_low_precision_dtype_is_audited_in_turn(capsys):
    status = main(
        ["audit", f"{LOSSES_FILE}:safeloss_triplet", "--kind", "triplet", "--backend", BACKEND,
         "--examples", "5", "--dtype", "float16", "bfloat16"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.count("PASSED") == 2
    assert "float16," in out and "bfloat16," in out


def test_a_loss_that_raises_gets_a_message_not_a_traceback(capsys):
    status, out = audit(capsys, "raises", "logits")
    assert status == 2
    assert "the loss raised RuntimeError: labels must be strings" in out
    assert "--kind" in out
    assert "Traceback" not in out + capsys.readouterr().err


@pytest.mark.parametrize(
    "target, message",
    [
        (f"{LOSSES_FILE}:one_argument", "must take the Keras loss arguments (y_true, y_pred); "
                                        "its signature is one_argument(y_pred)"),
        (f"{LOSSES_FILE}:no_such_loss", "has no 'no_such_loss'; functions defined there:"),
        (f"{LOSSES_FILE}:SAFE_LOSSES", "is a list, not a function"),
        ("missing.py:loss", "No such file: 'missing.py'"),
        (LOSSES_FILE, "Expected FILE.py:FUNCTION"),
    ],
)
def test_bad_targets_get_a_clear_message(capsys, target, message):
    status = main(["audit", target, "--kind", "logits", "--backend", BACKEND])
    out = capsys.readouterr().out
    assert status == 2
    assert message in out, out


def test_a_module_that_fails_to_import_is_reported(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    status = main(["audit", f"{broken}:loss", "--kind", "logits", "--backend", BACKEND])
    assert status == 2
    assert "Importing" in capsys.readouterr().out


@pytest.mark.parametrize(
    "backend_name, expected",
    [
        ("SqrtGrad", "sqrt"),  # TensorFlow gradient op
        ("SqrtBackward0", "sqrt"),  # torch autograd node
        ("RealDiv", "divide"),
        ("__rtruediv__", "divide"),
        ("integer_pow", "power"),  # JAX primitive
        ("AddV2", "add"),
        ("exp", "exp"),
    ],
)
def test_op_names_of_every_backend_share_one_vocabulary(backend_name, expected):
    assert normalise(backend_name) == expected


def test_backend_option_reruns_in_a_child_with_that_backend(monkeypatch):
    import safeloss.__main__ as cli

    calls = []
    monkeypatch.setattr(
        cli.subprocess, "call", lambda command, env: calls.append((command, env)) or 1
    )
    other = "torch" if BACKEND != "torch" else "tensorflow"
    argv = ["audit", f"{LOSSES_FILE}:naive_triplet", "--kind", "triplet", "--backend", other]
    assert main(argv) == 1  # the child's exit status is passed on
    (command, env), = calls
    assert command == [sys.executable, "-m", "safeloss"] + argv
    assert env["KERAS_BACKEND"] == other
