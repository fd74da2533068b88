"""Draws the plots of docs/numerics.md into docs/img/ (committed PNGs).

    KERAS_BACKEND=tensorflow python scripts/numerics_plots.py

Each figure puts a textbook formula beside its safeloss counterpart on the
inputs that break the textbook one: its value (left) and the magnitude of
its gradient (right). Values and gradients come from
`safeloss.testing.value_and_grad`, one batch per curve (rows are
independent, so the gradient of the sum gives each row's gradient). A point
where a result is NaN or inf is drawn as a cross on the top edge.
"""

import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import safeloss  # noqa: E402
from safeloss import ops as safe_ops  # noqa: E402
from safeloss.testing import value_and_grad  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "img"
# The textbook curve is drawn wide and pale so that the safeloss curve
# stays visible where the two agree.
NAIVE = {"color": "tab:red", "label": "textbook", "linewidth": 4, "alpha": 0.45}
SAFE = {"color": "tab:blue", "label": "safeloss", "linewidth": 1.2}
KERAS = dict(NAIVE, label="keras.losses")


def naive_distance(a, b):
    return ops.sqrt(ops.sum(ops.square(a - b), axis=-1))


def naive_softplus(x):
    return ops.log(1.0 + ops.exp(x))


def naive_triplet(triplets, margin=1.0):
    anchor, positive, negative = (triplets[:, i] for i in range(3))
    return ops.maximum(
        naive_distance(anchor, positive) - naive_distance(anchor, negative) + margin,
        0.0,
    )


def gradient_norm(grad):
    grad = np.asarray(grad, "float64")
    return np.sqrt(np.sum(grad.reshape(len(grad), -1) ** 2, axis=1))


def draw(axis, x, y, style):
    """Finite points as a line, non-finite ones as crosses on the top edge."""
    y = np.asarray(y, "float64")
    finite = np.isfinite(y)
    axis.plot(x[finite], y[finite], marker=".", markersize=4, **style)
    return x[~finite]


def mark_nonfinite(axis, points):
    top = axis.get_ylim()[1]
    for x, style in points:
        if len(x):
            axis.plot(x, np.full(len(x), top), "x", color=style["color"],
                      markersize=8, clip_on=False,
                      label=f"{style['label']}: NaN or inf")
    axis.set_ylim(top=top)


def figure(name, title, xlabel, x, curves, xscale="log", yscales=("log", "log")):
    """`curves`: (style, values, gradient norms) per formula."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    panels = ((axes[0], 1, "value"), (axes[1], 2, "gradient norm"))
    for (axis, index, ylabel), yscale in zip(panels, yscales):
        bad = [(draw(axis, x, curve[index], curve[0]), curve[0]) for curve in curves]
        axis.set_xscale(xscale)
        axis.set_yscale(yscale)
        if yscale == "linear":
            axis.set_ylim(bottom=0)
        mark_nonfinite(axis, bad)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / f"{name}.png", dpi=90)
    plt.close(fig)


def zero_distance():
    gaps = np.concatenate([[0.0], np.logspace(-30, 0, 61)])
    anchor = np.zeros((len(gaps), 2), "float32")
    positive = (gaps[:, None] * np.array([0.6, 0.8])).astype("float32")
    curves = []
    for style, fn in ((NAIVE, naive_distance), (SAFE, safeloss.paired_distances)):
        value, (grad, _) = value_and_grad(fn, anchor, positive)
        curves.append((style, value, gradient_norm(grad)))
    gaps[0] = 1e-32
    figure(
        "zero_distance",
        "Euclidean distance ||a - p|| in float32 as p approaches a\n"
        "(the leftmost point is p = a)",
        "exact distance ||a - p||",
        gaps,
        curves,
        yscales=("log", "linear"),
    )


def softplus_overflow():
    x = np.linspace(60.0, 120.0, 61).astype("float32")
    curves = []
    for style, fn in ((NAIVE, naive_softplus), (SAFE, safe_ops.softplus)):
        value, (grad,) = value_and_grad(fn, x)
        curves.append((style, value, np.abs(grad)))
    figure(
        "softplus_overflow",
        "softplus(x) = log(1 + exp(x)) in float32",
        "x",
        x,
        curves,
        xscale="linear",
        yscales=("linear", "linear"),
    )


def zero_row():
    scales = np.logspace(-40, 0, 41)
    scores = (scales[:, None] * np.array([1.0, 0.5])).astype("float32")
    scores[0] = 0.0  # a ReLU row that is all zero
    targets = np.tile(np.array([[0.0, 1.0]], "float32"), (len(scales), 1))
    scales[0] = 1e-45
    curves = []
    for style, fn in (
        (KERAS, keras.losses.categorical_crossentropy),
        (SAFE, safeloss.categorical_crossentropy),
    ):
        value, (_, grad) = value_and_grad(fn, targets, scores)
        curves.append((style, value, gradient_norm(grad)))
    figure(
        "zero_row",
        "categorical cross-entropy of a ReLU row s * [1, 0.5], target class 2\n"
        "(the leftmost point is the all-zero row)",
        "row scale s",
        scales,
        curves,
        yscales=("linear", "log"),
    )


def float16_triplet():
    # The positive is twice as far from the anchor as the negative, so the
    # loss is 0.5 s + 1 and its gradient never vanishes.
    scales = np.logspace(0, np.log10(6000.0), 40)
    base = np.array([[0.0, 0.0], [0.6, 0.8], [0.3, 0.4]])
    triplets = (scales[:, None, None] * base).astype("float16")
    curves = []
    for style, fn in (
        (NAIVE, naive_triplet),
        (SAFE, lambda t: safeloss.triplet_loss(t[:, 0], t[:, 1], t[:, 2])),
    ):
        value, (grad,) = value_and_grad(fn, triplets)
        curves.append((style, value, gradient_norm(grad)))
    figure(
        "float16_triplet",
        "float16 triplet loss (margin 1), anchor 0, positive s (0.6, 0.8), "
        "negative s (0.3, 0.4)",
        "embedding scale s",
        scales,
        curves,
        yscales=("log", "linear"),
    )


if __name__ == "__main__":
    zero_distance()
    softplus_overflow()
    zero_row()
    float16_triplet()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))
