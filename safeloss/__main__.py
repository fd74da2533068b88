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
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _run_demo(args, argv)
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


if __name__ == "__main__":
    sys.exit(main())
