"""The two stories of `python -m safeloss demo`, each trained twice.

Both models see the same synthetic data and the same initial weights; only
the loss differs. Every step records the loss and whether every weight is
still finite.
"""

import dataclasses

import keras
import numpy as np

import safeloss

DIM = 8
BATCH = 32
REPORT_EVERY = 10


@dataclasses.dataclass
class Run:
    label: str
    losses: list
    weights_finite: list

    @property
    def first_nan_step(self):
        for step, (loss, finite) in enumerate(zip(self.losses, self.weights_finite)):
            if not (np.isfinite(loss) and finite):
                return step
        return None


@dataclasses.dataclass
class StoryResult:
    story: str
    runs: list


def _weights_finite(model):
    return all(
        np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights
    )


def _train(model, batches, label):
    run = Run(label, [], [])
    for x, y in batches:
        loss = model.train_on_batch(x, y)
        run.losses.append(float(np.asarray(loss)))
        run.weights_finite.append(_weights_finite(model))
    return run


# ---- story 1: ReLU classifier with categorical cross-entropy ----------------


def _classifier(seed):
    keras.utils.set_random_seed(seed)
    # A negative bias on the ReLU output layer: many rows start all-zero.
    return keras.Sequential(
        [
            keras.Input((DIM,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(
                2,
                activation="relu",
                bias_initializer=keras.initializers.Constant(-1.0),
            ),
        ]
    )


def _classifier_batches(steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.standard_normal((BATCH, DIM)).astype("float32")
        labels = (x[:, 0] > 0).astype("int64")
        yield x, np.eye(2, dtype="float32")[labels]


def classifier_story(steps, seed):
    runs = []
    for label, loss in [
        ("keras.losses.CategoricalCrossentropy", keras.losses.CategoricalCrossentropy()),
        ("safeloss.CategoricalCrossentropy", safeloss.CategoricalCrossentropy()),
    ]:
        model = _classifier(seed)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
        runs.append(_train(model, _classifier_batches(steps, seed), label))
    return StoryResult("classifier: Dense(2, relu) + categorical cross-entropy", runs)


# ---- story 2: siamese triplet network --------------------------------------


def _encoder(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((DIM,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(4)],
        name="encoder",
    )


def _hand_written_triplet(tensors):
    """The Lambda-layer loss found in many siamese tutorials."""
    from keras import ops

    anchor, positive, negative = tensors
    d_ap = ops.sqrt(ops.sum(ops.square(anchor - positive), axis=-1))
    d_an = ops.sqrt(ops.sum(ops.square(anchor - negative), axis=-1))
    return ops.log(1.0 + ops.exp(d_ap - d_an + 1.0))


def _siamese_naive(seed):
    encoder = _encoder(seed)
    inputs = [keras.Input((DIM,), name=n) for n in ("anchor", "positive", "negative")]
    loss = keras.layers.Lambda(_hand_written_triplet)([encoder(i) for i in inputs])
    model = keras.Model(inputs, loss)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=lambda y_true, y_pred: keras.ops.mean(y_pred),
    )
    return model


def _siamese_safe(seed):
    encoder = _encoder(seed)
    inputs = [keras.Input((DIM,), name=n) for n in ("anchor", "positive", "negative")]
    # Stack the three embeddings on axis 1: (batch, 3, dim), no Lambda.
    embeddings = [keras.layers.Reshape((1, 4))(encoder(i)) for i in inputs]
    stacked = keras.layers.Concatenate(axis=1)(embeddings)
    model = keras.Model(inputs, stacked)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=safeloss.TripletLoss(margin=1.0, soft=True),
    )
    return model


def _siamese_batches(steps, seed):
    rng = np.random.default_rng(seed)
    for step in range(steps):
        anchor = rng.standard_normal((BATCH, DIM)).astype("float32")
        positive = anchor + 0.1 * rng.standard_normal((BATCH, DIM)).astype("float32")
        if step % 3 == 2:
            # Duplicated images: the positive is the anchor itself.
            positive[: BATCH // 2] = anchor[: BATCH // 2]
        negative = rng.standard_normal((BATCH, DIM)).astype("float32")
        yield [anchor, positive, negative], np.zeros((BATCH,), "float32")


def siamese_story(steps, seed):
    runs = []
    for label, build in [
        ("hand-written Lambda triplet", _siamese_naive),
        ("safeloss.TripletLoss(soft=True)", _siamese_safe),
    ]:
        model = build(seed)
        runs.append(_train(model, _siamese_batches(steps, seed), label))
    return StoryResult("siamese: triplet loss, anchors equal to positives", runs)


def run_story(story, steps, seed):
    result = {"classifier": classifier_story, "siamese": siamese_story}[story](steps, seed)
    _print_story(result)
    return result


def _print_story(result):
    print(f"\n== {result.story} (backend: {keras.backend.backend()}) ==")
    width = max(len(run.label) for run in result.runs)
    steps = len(result.runs[0].losses)
    for start in range(0, steps, REPORT_EVERY):
        stop = min(start + REPORT_EVERY, steps)
        print(f"steps {start:3d}-{stop - 1:3d}")
        for run in result.runs:
            loss = run.losses[stop - 1]
            finite = all(run.weights_finite[start:stop])
            print(
                f"  {run.label:<{width}}  loss {loss:10.4f}  "
                f"weights {'finite' if finite else 'NOT FINITE'}"
            )


def print_summary(results):
    print("\n| story | loss | first non-finite step | final loss | weights finite |")
    print("|---|---|---|---|---|")
    for result in results:
        for run in result.runs:
            first = run.first_nan_step
            print(
                f"| {result.story.split(':')[0]} | {run.label} | "
                f"{'-' if first is None else first} | {run.losses[-1]:.4f} | "
                f"{'yes' if run.weights_finite[-1] else 'no'} |"
            )
