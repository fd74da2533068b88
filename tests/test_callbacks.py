"""NonFiniteGuard: detection, restore, stop or continue, snapshots.

Every training test injects a non-finite value mid-epoch and compares the
guarded model with a clone trained on the finite batches only: same initial
weights, same optimizer, same batch order, so the two must agree bit for bit
(the same compiled step on the same inputs). `fit` runs in Keras' default
compiled mode (XLA on TensorFlow, `jax.jit` on JAX); a NaN in the input
propagates through it to the loss and the weights, so no `jit_compile=False`
is needed. The headline test also runs eagerly.
"""

import keras
import numpy as np
import pytest

import safeloss
from safeloss.callbacks import NonFiniteGuard

BATCH = 4
STEPS = 6
BAD_BATCH = 3
RNG = np.random.default_rng(10)
X = RNG.normal(size=(BATCH * STEPS, 3)).astype("float32")
Y = RNG.normal(size=(BATCH * STEPS, 1)).astype("float32")
X_NAN = X.copy()
X_NAN[BAD_BATCH * BATCH + 1, 2] = np.nan
FINITE_ROWS = np.r_[0 : BAD_BATCH * BATCH, (BAD_BATCH + 1) * BATCH : len(X)]

OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(0.01),
}


def make_model(optimizer="adam", mode="compiled", dtype="float32"):
    """Same weights on every call; BatchNormalization adds non-trainable
    weights that a NaN batch also poisons."""
    kernel = keras.initializers.GlorotUniform(seed=1)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                4,
                activation="tanh",
                kernel_initializer=kernel,
                name="hidden",
                dtype=dtype,
            ),
            keras.layers.BatchNormalization(name="norm", dtype=dtype),
            keras.layers.Dense(
                1, kernel_initializer=kernel, name="out", dtype=dtype
            ),
        ]
    )
    if mode == "eager":
        model.compile(OPTIMIZERS[optimizer](), "mse", run_eagerly=True)
    else:
        model.compile(OPTIMIZERS[optimizer](), "mse")
    return model


def fit(model, x, y, callbacks=(), epochs=1):
    return model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
    ).history


def values(variables):
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


def assert_same_state(model, reference):
    """Weights and optimizer variables (step counter, moments) agree."""
    for actual, expected in zip(model.weights, reference.weights):
        assert actual.dtype == expected.dtype
    for group in ("weights", "optimizer"):
        actual = values(state_variables(model, group))
        expected = values(state_variables(reference, group))
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert np.all(np.isfinite(a.astype(np.float64)))
            np.testing.assert_array_equal(a, e, err_msg=group)


def state_variables(model, group):
    return model.weights if group == "weights" else model.optimizer.variables


def sync(model):
    # The JAX trainer keeps the state outside the variables between batches.
    getattr(model, "jax_state_sync", lambda: None)()


class Poison(keras.callbacks.Callback):
    """Writes a NaN into one variable after one batch (before the guard)."""

    def __init__(self, epoch, batch, path_suffix):
        super().__init__()
        self.at = (epoch, batch)
        self.path_suffix = path_suffix

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) != self.at:
            return
        sync(self.model)
        variables = self.model.weights + self.model.optimizer.variables
        (target,) = [v for v in variables if v.path.endswith(self.path_suffix)]
        value = np.array(keras.ops.convert_to_numpy(target.value))
        value.flat[0] = np.nan
        target.assign(value)


class LossRecorder(keras.callbacks.Callback):
    """Collects the guard's per-batch loss after every batch."""

    def __init__(self, guard):
        super().__init__()
        self.guard = guard
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(self.guard.last_batch_loss)


def test_is_exported():
    assert safeloss.NonFiniteGuard is NonFiniteGuard
    assert "NonFiniteGuard" in safeloss.__all__


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_nan_batch_stops_with_the_last_finite_step(optimizer, mode, capsys):
    model = make_model(optimizer, mode)
    guard = NonFiniteGuard()
    history = fit(model, X_NAN, Y, [guard], epochs=2)

    reference = make_model(optimizer, mode)
    reference_history = fit(
        reference, X[: BAD_BATCH * BATCH], Y[: BAD_BATCH * BATCH]
    )
    assert_same_state(model, reference)
    assert int(values([model.optimizer.iterations])[0]) == BAD_BATCH
    # The epoch's loss is the mean over the kept batches, as the reference's.
    assert history["loss"] == pytest.approx(reference_history["loss"])
    assert len(guard.events) == 1
    assert (guard.epoch, guard.batch, guard.reason) == (0, BAD_BATCH, "loss")
    assert guard.first_bad_layer == "hidden"
    assert guard.first_bad_variable.endswith("hidden/kernel")
    assert np.isnan(guard.batch_loss)
    event = guard.events[0]
    assert (event.restored_epoch, event.restored_batch) == (0, BAD_BATCH - 1)
    report = capsys.readouterr().out
    assert "non-finite loss at epoch 0, batch 3" in report
    assert "'hidden'" in report and "stopping training" in report


@pytest.mark.slow
def test_continue_skips_the_bad_batch_every_epoch(capsys):
    model = make_model()
    guard = NonFiniteGuard(stop_training=False, verbose=0)
    history = fit(model, X_NAN, Y, [guard], epochs=2)

    reference = make_model()
    reference_history = fit(reference, X[FINITE_ROWS], Y[FINITE_ROWS], epochs=2)
    assert_same_state(model, reference)
    assert history["loss"] == pytest.approx(reference_history["loss"])
    assert [(e.epoch, e.batch) for e in guard.events] == [
        (0, BAD_BATCH),
        (1, BAD_BATCH),
    ]
    assert capsys.readouterr().out == ""


@pytest.mark.slow
def test_every_n_batches_goes_back_to_the_latest_snapshot():
    model = make_model()
    guard = NonFiniteGuard(every_n_batches=2, verbose=0)
    fit(model, X_NAN, Y, [guard])

    # Finite batches 0, 1, 2: the snapshot after the second one is kept.
    reference = make_model()
    fit(reference, X[: 2 * BATCH], Y[: 2 * BATCH])
    assert_same_state(model, reference)
    assert guard.events[0].restored_batch == 1


@pytest.mark.slow
def test_nan_in_the_first_batch_restores_the_initial_state():
    model = make_model("sgd")
    initial = values(model.weights)
    x = X.copy()
    x[0, 0] = np.nan
    guard = NonFiniteGuard(verbose=0)
    history = fit(model, x, Y, [guard])

    for actual, expected in zip(values(model.weights), initial):
        np.testing.assert_array_equal(actual, expected)
    optimizer = values(model.optimizer.variables)
    assert int(values([model.optimizer.iterations])[0]) == 0
    assert all(np.all(np.isfinite(v.astype(np.float64))) for v in optimizer)
    event = guard.events[0]
    assert (event.epoch, event.batch) == (0, 0)
    assert (event.restored_epoch, event.restored_batch) == (None, None)
    # No batch of the epoch kept: Keras reports the empty mean, 0.
    assert history["loss"] == [0.0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "path_suffix, reason, layer",
    [
        ("/out/bias", "weights", "out"),
        ("_hidden_kernel_velocity", "optimizer", None),
    ],
)
def test_non_finite_variable_with_a_finite_loss(path_suffix, reason, layer):
    model = make_model()
    guard = NonFiniteGuard(verbose=0)
    history = fit(model, X, Y, [Poison(1, 2, path_suffix), guard], epochs=2)

    reference = make_model()
    reference_history = fit(reference, X, Y)
    reference_history["loss"] += fit(reference, X[: 2 * BATCH], Y[: 2 * BATCH])[
        "loss"
    ]
    assert_same_state(model, reference)
    assert history["loss"] == pytest.approx(reference_history["loss"])
    assert (guard.epoch, guard.batch, guard.reason) == (1, 2, reason)
    assert guard.first_bad_layer == layer
    assert np.isfinite(guard.batch_loss)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_checkpoint_path_holds_the_snapshot(dtype, tmp_path):
    path = tmp_path / "guard.npz"
    model = make_model(dtype=dtype)
    guard = NonFiniteGuard(checkpoint_path=path, verbose=0)
    fit(model, X_NAN, Y, [guard])

    reference = make_model(dtype=dtype)
    fit(reference, X[: BAD_BATCH * BATCH], Y[: BAD_BATCH * BATCH])
    assert_same_state(model, reference)
    assert keras.backend.standardize_dtype(model.weights[0].dtype) == dtype
    assert guard._snapshot is None
    assert not (tmp_path / "guard.npz.partial").exists()
    with np.load(path) as saved:
        assert int(saved["batch"]) == BAD_BATCH - 1
        kernel = saved["weights_0"]
    expected = values(model.weights)[0]
    np.testing.assert_array_equal(kernel, expected.view(kernel.dtype))


@pytest.mark.slow
def test_batch_loss_is_each_batch_own_loss():
    # 22 samples: the last batch has 2, and Keras weights the running mean
    # by batch size.
    x, y = X[:22], Y[:22]
    model = make_model()
    guard = NonFiniteGuard(verbose=0)
    recorder = LossRecorder(guard)
    fit(model, x, y, [guard, recorder])

    # One fit per batch reports that batch's loss at the pre-step weights.
    reference = make_model()
    expected = [
        fit(reference, x[i : i + BATCH], y[i : i + BATCH])["loss"][0]
        for i in range(0, len(x), BATCH)
    ]
    assert not guard.triggered
    assert len(recorder.losses) == len(expected) == 6
    # Differences of a float32 running total: a few ulps of the total.
    np.testing.assert_allclose(recorder.losses, expected, rtol=1e-5)


@pytest.mark.parametrize("every_n_batches", [0, -1, 1.5, True, "2"])
def test_every_n_batches_must_be_a_positive_int(every_n_batches):
    with pytest.raises(ValueError, match="every_n_batches.*positive int"):
        NonFiniteGuard(every_n_batches=every_n_batches)


def test_attributes_before_training():
    guard = NonFiniteGuard()
    assert not guard.triggered
    assert guard.events == []
    assert guard.epoch is None and guard.reason is None
    assert guard.last_batch_loss is None
