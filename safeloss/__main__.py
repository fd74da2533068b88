"""Command line: ``python -m safeloss demo`` (and ``audit``, where installed).

``demo`` trains two small models side by side on synthetic data, the
hand-written (or Keras) loss against the safeloss one, and shows where the
first turns every weight into NaN:

1. ``classifier``: a model ending in ``Dense(2, activation="relu")`` with
   categorical cross-entropy. Rows whose ReLU outputs are all zero make
   Keras divide 0 by 0.
2. ``siamese``: a three-input triplet network whose loss is written by hand
   in a `Lambda` layer (``sqrt(sum(square(a - p)))`` and ``log(1 + exp(x))``).
   Batches where the anchor equals the positive give sqrt an infinite slope.
"""

import argparse
import os
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")
STORIES = ("classifier", "siamese")


def _parser():
    parser = argparse.ArgumentParser(prog="python -m safeloss")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train naive and safe losses side by side"
    )
    demo.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backend (default: $KERAS_BACKEND or tensorflow)",
    )
    demo.add_argument(
        "--story", choices=STORIES + ("all",), default="all",
        help="which model to train (default: both)",
    )
    demo.add_argument("--steps", type=int, default=40, help="training steps")
    demo.add_argument("--seed", type=int, default=0)
    _add_audit_parser(commands)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _run_demo(args, argv)
    if args.command == "audit":
        return _run_audit(args, argv)
    return 2


def _run_demo(args, argv):
    # The backend is fixed when keras is first imported, which `import
    # safeloss` has already done: run again in a child with the backend set.
    import keras

    if keras.backend.backend() != args.backend:
        env = dict(os.environ, KERAS_BACKEND=args.backend)
        command = [sys.executable, "-m", "safeloss"] + list(
            sys.argv[1:] if argv is None else argv
        )
        return subprocess.call(command, env=env)
    from safeloss import _demo

    stories = STORIES if args.story == "all" else (args.story,)
    results = [
        _demo.run_story(story, steps=args.steps, seed=args.seed)
        for story in stories
    ]
    _demo.print_summary(results)
    return 0


AUDIT_KINDS = ("triplet", "pairs", "embeddings", "logits", "probabilities")
AUDIT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _add_audit_parser(commands):
    audit = commands.add_parser(
        "audit",
        help="search for inputs that make your own loss NaN or inf",
        description=(
            "Draws adversarial inputs for a loss (y_true, y_pred), checks the "
            "loss and its gradient for NaN and inf, and explains the smallest "
            "failing input. Exit status: 0 nothing found, 1 a failure found, "
            "2 the audit could not run."
        ),
    )
    audit.add_argument("target", metavar="FILE.py:FUNCTION")
    audit.add_argument(
        "--kind", required=True, choices=AUDIT_KINDS,
        help="what y_pred is: triplet (batch, 3, dim), pairs (batch, 2, dim) "
        "with 0/1 labels, embeddings (batch, dim) with integer labels, "
        "logits or probabilities (batch, classes) with one-hot labels",
    )
    audit.add_argument(
        "--backend", choices=BACKENDS,
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backend (default: $KERAS_BACKEND or tensorflow)",
    )
    audit.add_argument(
        "--dtype", nargs="+", choices=AUDIT_DTYPES + ("all",), default=["float32"],
        help="dtypes to audit (default: float32)",
    )
    audit.add_argument("--batch", type=int, default=4)
    audit.add_argument("--dim", type=int, default=3)
    audit.add_argument("--classes", type=int, default=3)
    audit.add_argument(
        "--examples", type=int, default=100, help="inputs drawn per dtype"
    )
    audit.add_argument("--seed", type=int, default=0)
    audit.add_argument(
        "--compiled", action="store_true",
        help="evaluate under XLA (tensorflow) or jax.jit (jax)",
    )


def _run_audit(args, argv):
    import keras

    if keras.backend.backend() != args.backend:
        return _rerun_with_backend(args.backend, argv)
    try:
        from safeloss import _audit
    except ImportError as error:
        print(
            f"safeloss audit needs hypothesis: pip install 'safeloss[audit]' "
            f"({error})",
            file=sys.stderr,
        )
        return 2
    dtypes = AUDIT_DTYPES if "all" in args.dtype else tuple(args.dtype)
    return _audit.audit(
        args.target, kind=args.kind, dtypes=dtypes, batch=args.batch,
        dim=args.dim, classes=args.classes, examples=args.examples,
        seed=args.seed, compiled=args.compiled,
    )


def _rerun_with_backend(backend, argv):
    # The backend is fixed when keras is first imported, which `import
    # safeloss` has already done: run again in a child with the backend set.
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("JAX_ENABLE_X64", "1")
    command = [sys.executable, "-m", "safeloss"] + list(
        sys.argv[1:] if argv is None else argv
    )
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
