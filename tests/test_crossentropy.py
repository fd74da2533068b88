"""Tests of the safe cross-entropy losses (safeloss.losses._crossentropy)."""

import inspect

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import safeloss
from safeloss import ops as safe_ops
from safeloss.testing import all_finite, tolerances, value_and_grad
from safeloss.testing import strategies as S
from tests import references as ref
from tests.conftest import BACKEND, MODES

# JAX compiles every op per shape, eagerly too: draw from a few shapes;
# XLA (compiled) gets one.
FIXED_SHAPES = st.sampled_from([(3, 4), (5, 2)])
COMPILED_SHAPE = st.just((3, 4))
LOSS_NAMES = (
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "CategoricalFocalCrossentropy",
    "BinaryFocalCrossentropy",
)



def shapes(data, compiled):
    if compiled:
        return data.draw(COMPILED_SHAPE)
    if BACKEND == "jax":
        return data.draw(FIXED_SHAPES)
    return data.draw(S.shapes(min_dim=2, max_batch=6, max_dim=6))


def scores(data, dtype, shape, from_logits):
    """Logits, or probability-like scores: unnormalised, zero rows, exact 0
    and 1, and sometimes linear outputs with negative values."""
    if from_logits:
        return data.draw(S.logits(dtype, shape))
    if data.draw(st.booleans()):
        return data.draw(S.probabilities(dtype, shape))
    return data.draw(S.floats(dtype, shape))


def _flushes_subnormals():
    """Whether the device computes with subnormals as 0 (TensorFlow and JAX
    on CPU do, PyTorch does not)."""
    tiny = safe_ops.tiny("float32")
    x = keras.ops.convert_to_tensor(np.array([tiny / 4], np.float32))
    return float(keras.ops.convert_to_numpy(x * 1.0)[0]) == 0.0


FLUSHES_SUBNORMALS = _flushes_subnormals()


def as_computed(y_pred, dtype):
    """The inputs as the device sees them: on a device that flushes, values
    below the compute dtype's smallest normal are 0 (a float16 subnormal is
    a normal float32, the compute dtype, and stays)."""
    if not FLUSHES_SUBNORMALS:
        return ref.as_float64(y_pred)
    return ref.flush(y_pred, safe_ops.compute_dtype(dtype))


def log_magnitude(y_pred, from_logits, dtype):
    """Per-row size of the logarithms involved: the absolute error of a
    log-space computation is a few roundings of this, whatever the result."""
    x = np.abs(ref.as_float64(y_pred))
    if from_logits:
        return 1.0 + np.max(x, axis=-1)
    return 1.0 - np.log(float(safe_ops.finfo(dtype).tiny)) + np.log1p(np.max(x, axis=-1))


def assert_loss_close(value, expected, dtype, magnitude, weight=1.0):
    """Per-dtype tolerance plus the absolute error of log-space arithmetic in
    the compute dtype (float32 for float16 and bfloat16)."""
    tolerances.assert_allclose(value, value, dtype)  # dtype check
    compute = safe_ops.compute_dtype(dtype)
    tol = tolerances.TOLERANCES[dtype]
    got, expected = ref.as_float64(value), np.asarray(expected, np.float64)
    big = float(safe_ops.finfo(dtype).max)
    expected = np.clip(expected, -big, big)
    bound = (
        tol["rtol"] * np.abs(expected)
        + tol["atol"]
        + 16 * tolerances.unit_roundoff(compute) * magnitude * weight
    )
    excess = np.abs(got - expected) - bound
    assert not np.any(excess > 0), (
        f"loss beyond tolerance at {np.argmax(excess)}: got {got}, expected "
        f"{expected}, bound {bound}"
    )


# ---------------------------------------------------------------------------
# Signatures and registration


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_signature_equals_keras(name):
    ours, theirs = getattr(safeloss, name), getattr(keras.losses, name)
    assert inspect.signature(ours) == inspect.signature(theirs)
    assert issubclass(ours, safeloss.losses.SafeLoss)
    function = keras.losses.get(ours().get_config()["name"]).__name__
    assert inspect.signature(getattr(safeloss, function)) == inspect.signature(
        getattr(keras.losses, function)
    )


# ---------------------------------------------------------------------------
# Properties against the float64 reference


@pytest.mark.parametrize("from_logits", [True, False])
@given(data=st.data())
def test_categorical_matches_reference(data, from_logits, dtype, compiled):
    shape = shapes(data, compiled)
    y_pred = scores(data, dtype, shape, from_logits)
    y_true = data.draw(S.class_targets(dtype, shape))
    value, (grad_true, grad_pred) = value_and_grad(
        safeloss.categorical_crossentropy,
        y_true,
        y_pred,
        compiled=compiled,
        from_logits=from_logits,
    )
    assert str(value.dtype) == dtype and value.shape == (shape[0],)
    assert all_finite(value) and all_finite(grad_true) and all_finite(grad_pred)
    magnitude = log_magnitude(y_pred, from_logits, dtype)
    seen = as_computed(y_pred, dtype)
    expected = ref.categorical_crossentropy(y_true, seen, from_logits, dtype)
    assert_loss_close(value, expected, dtype, magnitude)
    # d/dy_true = -log p: the log-probabilities themselves.
    log_p = ref.log_probabilities(seen, from_logits, dtype)
    assert_loss_close(grad_true, -log_p, dtype, magnitude[:, None])
    # d/dy_pred, from the definitions.
    y, x = ref.as_float64(y_true), seen
    mass = np.sum(y, axis=-1, keepdims=True)
    if from_logits:
        expected_grad = np.exp(log_p) * mass - y
        scale = np.abs(y) + mass
    else:
        tiny = float(safe_ops.finfo(dtype).tiny)
        total = np.sum(np.maximum(x, 0.0), axis=-1, keepdims=True)
        live = total >= tiny
        counted = x >= tiny
        inverse_p = np.where(counted, 1.0 / np.where(counted, x, 1.0), 0.0)
        inverse_total = np.where(live & (x >= 0), mass / np.where(live, total, 1.0), 0.0)
        expected_grad = np.where(live, inverse_total - y * inverse_p, 0.0)
        scale = y * inverse_p + inverse_total
    tol = tolerances.TOLERANCES[dtype]
    error = np.abs(ref.as_float64(grad_pred) - expected_grad)
    if not from_logits:
        # A negative subnormal is 0 (derivative 1 / sum) where the device
        # flushes it, negative (derivative 0) where not: either is right.
        error[(x < 0) & (x > -tiny)] = 0.0
    assert np.all(error <= 4 * tol["rtol"] * scale + tol["atol"]), (grad_pred, expected_grad)

    # Integer labels must give what their one-hot targets give (eagerly:
    # compiled, it would be one more XLA program per dtype).
    one_hot_rows = np.all(np.isin(y, [0.0, 1.0]), -1) & (y.sum(-1) == 1)
    if np.all(one_hot_rows) and not compiled:
        sparse, _ = value_and_grad(
            safeloss.sparse_categorical_crossentropy,
            np.argmax(y, -1).astype(np.int32),
            y_pred,
            compiled=compiled,
            from_logits=from_logits,
        )
        tolerances.assert_allclose(sparse, ref.as_float64(value), dtype)


@pytest.mark.parametrize("from_logits", [True, False])
@given(data=st.data())
def test_binary_matches_reference(data, from_logits, dtype, compiled):
    shape = shapes(data, compiled)
    y_pred = scores(data, dtype, shape, from_logits)
    y_true = data.draw(S.binary_targets(dtype, shape))
    value, grads = value_and_grad(
        safeloss.binary_crossentropy, y_true, y_pred, compiled=compiled, from_logits=from_logits
    )
    assert str(value.dtype) == dtype and value.shape == (shape[0],)
    assert all_finite(value) and all(all_finite(g) for g in grads)
    expected = ref.binary_crossentropy(y_true, y_pred, from_logits, dtype)
    assert_loss_close(value, expected, dtype, log_magnitude(y_pred, from_logits, dtype))
    if from_logits:
        # d/dx = (sigmoid(x) - y) / n for unclipped logits.
        log_p, _ = ref.binary_log_probabilities(y_pred, True, dtype)
        expected_grad = (np.exp(log_p) - ref.as_float64(y_true)) / shape[1]
        tolerances.assert_allclose(grads[1], expected_grad, dtype, scale=4)


@pytest.mark.parametrize("from_logits", [True, False])
@given(data=st.data())
def test_focal_matches_reference(data, from_logits, dtype, compiled):
    shape = shapes(data, compiled)
    gamma = 0.5  # below 1: (1 - p)**gamma has an infinite slope at p = 1
    y_pred = scores(data, dtype, shape, from_logits)
    magnitude = log_magnitude(y_pred, from_logits, dtype)

    y_true = data.draw(S.class_targets(dtype, shape))
    value, grads = value_and_grad(
        safeloss.categorical_focal_crossentropy,
        y_true,
        y_pred,
        compiled=compiled,
        from_logits=from_logits,
        gamma=gamma,
    )
    assert str(value.dtype) == dtype
    assert all_finite(value) and all(all_finite(g) for g in grads)
    expected = ref.categorical_crossentropy(
        y_true, y_pred, from_logits, dtype, gamma=gamma, alpha=0.25
    )
    assert_loss_close(value, expected, dtype, magnitude)

    y_binary = data.draw(S.binary_targets(dtype, shape))
    value, grads = value_and_grad(
        safeloss.binary_focal_crossentropy,
        y_binary,
        y_pred,
        compiled=compiled,
        from_logits=from_logits,
        gamma=gamma,
    )
    assert all_finite(value) and all(all_finite(g) for g in grads)
    expected = ref.binary_crossentropy(y_binary, y_pred, from_logits, dtype, gamma=gamma)
    assert_loss_close(value, expected, dtype, magnitude)


# ---------------------------------------------------------------------------
# Edge points


def _all_losses(y_one_hot, y_pred, from_logits, label_smoothing=0.0):
    """Every loss on one input, summed per loss: one compiled function."""
    labels = keras.ops.argmax(y_one_hot, axis=-1)
    dense = dict(from_logits=from_logits, label_smoothing=label_smoothing)
    return keras.ops.stack(
        [
            keras.ops.sum(safeloss.categorical_crossentropy(y_one_hot, y_pred, **dense)),
            keras.ops.sum(
                safeloss.sparse_categorical_crossentropy(labels, y_pred, from_logits=from_logits)
            ),
            keras.ops.sum(safeloss.binary_crossentropy(y_one_hot, y_pred, **dense)),
            keras.ops.sum(
                safeloss.categorical_focal_crossentropy(y_one_hot, y_pred, gamma=0.5, **dense)
            ),
            keras.ops.sum(
                safeloss.binary_focal_crossentropy(y_one_hot, y_pred, gamma=0.5, **dense)
            ),
        ]
    )


def test_infinite_logits(dtype, compiled):
    """+inf on the true class costs 0; -inf masks with zero targets give no
    NaN; a fully masked row is uniform."""
    inf = np.inf
    y = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0]], S.numpy_dtype(dtype))
    x = np.array([[inf, 0, -inf], [0, -inf, -inf], [-inf, -inf, -inf]], S.numpy_dtype(dtype))
    value, (grad_y, grad_x) = value_and_grad(_all_losses, y, x, compiled=compiled, from_logits=True)
    assert all_finite(value) and all_finite(grad_y) and all_finite(grad_x)
    per_sample, _ = value_and_grad(
        safeloss.categorical_crossentropy, y, x, compiled=compiled, from_logits=True
    )
    np.testing.assert_array_equal(ref.as_float64(per_sample), [0.0, 0.0, 0.0])
    binary, _ = value_and_grad(
        safeloss.binary_crossentropy, y, x, compiled=compiled, from_logits=True
    )
    # Only the 0 logits cost anything: log(2) each, over 3 entries.
    tolerances.assert_allclose(binary, np.array([1, 1, 0]) * np.log(2) / 3, dtype)
    # Label smoothing puts mass on the masked classes: large but finite.
    smoothed, grads = value_and_grad(
        _all_losses, y, x, compiled=compiled, from_logits=True, label_smoothing=0.1
    )
    assert all_finite(smoothed) and all(all_finite(g) for g in grads)
    assert float(ref.as_float64(smoothed)[0]) > 1e3


def test_logits_near_a_tenth_of_the_max_are_exact(dtype, compiled):
    big = S.max_magnitude(dtype)
    x = np.array([[big, -big, 0.0], [big, big, big]], np.float64).astype(S.numpy_dtype(dtype))
    y = np.array([[0, 1, 0], [0, 0, 1]], S.numpy_dtype(dtype))
    value, (_, grad) = value_and_grad(
        safeloss.categorical_crossentropy, y, x, compiled=compiled, from_logits=True
    )
    assert all_finite(grad)
    expected = [2 * float(x[0, 0].astype(np.float64)), np.log(3)]
    tolerances.assert_allclose(value, expected, dtype)


def test_zero_rows_exact_zeros_and_negative_scores(dtype, compiled):
    """Dead ReLU rows are uniform, exact 0 on the true class is capped at
    -log(tiny), negative (linear) outputs count as 0: all finite."""
    tiny = float(safe_ops.finfo(dtype).tiny)
    y = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], S.numpy_dtype(dtype))
    p = np.array([[0, 0], [1, 0], [1, 0], [-2, 3]], S.numpy_dtype(dtype))
    value, (_, grad) = value_and_grad(safeloss.categorical_crossentropy, y, p, compiled=compiled)
    expected = [np.log(2), -np.log(tiny), 0.0, np.log(3) - np.log(tiny)]
    tolerances.assert_allclose(value, expected, dtype)
    np.testing.assert_array_equal(ref.as_float64(grad[0]), 0.0)
    # Saturated but right: the exact gradient, not Keras' clipped zero.
    tolerances.assert_allclose(grad[2], [0.0, 1.0], dtype)
    everything, grads = value_and_grad(_all_losses, y, p, compiled=compiled, from_logits=False)
    assert all_finite(everything) and all(all_finite(g) for g in grads)


def test_focal_saturation_with_small_gamma_has_finite_gradient(dtype, compiled):
    """(1 - p)**gamma with gamma < 1 has an infinite slope at p = 1."""
    y = np.array([[1, 0], [0, 1]], S.numpy_dtype(dtype))
    for x, from_logits in ((np.array([[1, 0], [1, 0]]), False), (np.array([[60, -60], [60, -60]]), True)):
        x = x.astype(S.numpy_dtype(dtype))
        for fn in (safeloss.categorical_focal_crossentropy, safeloss.binary_focal_crossentropy):
            value, grads = value_and_grad(
                fn, y, x, compiled=compiled, from_logits=from_logits, gamma=0.25
            )
            assert all_finite(value) and all(all_finite(g) for g in grads), fn.__name__
            assert float(ref.as_float64(value)[0]) == pytest.approx(0.0, abs=1e-3)


def test_probability_sums_beyond_the_dtype_range():
    """20 scores of max/10 sum past float32's largest value."""
    big = S.max_magnitude("float32")
    p = np.full((1, 20), big, np.float32)
    y = np.eye(20, dtype=np.float32)[:1]
    value, (_, grad) = value_and_grad(safeloss.categorical_crossentropy, y, p)
    # log p is the difference of two logarithms near log(max) = 88: their
    # rounding, not the guard, bounds the error.
    rounding = 4 * np.finfo(np.float32).eps * np.log(big)
    np.testing.assert_allclose(value, [np.log(20)], rtol=0, atol=rounding)
    assert all_finite(grad)


# ---------------------------------------------------------------------------
# Agreement with keras.losses on ordinary inputs


def _ordinary_inputs(from_logits, rng, logit_range, shape=(16, 5)):
    if from_logits:
        y_pred = rng.uniform(-logit_range, logit_range, shape)
    else:
        y_pred = rng.uniform(0.0, 1.0, shape) + 1e-3
        y_pred /= y_pred.sum(-1, keepdims=True)
        y_pred[0] = [1e-6, 1e-6, 1e-6, 1e-6, 1 - 4e-6]
    y_soft = rng.uniform(0, 1, shape)
    y_soft /= y_soft.sum(-1, keepdims=True)
    return y_soft.astype(np.float32), y_pred.astype(np.float32)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("CategoricalCrossentropy", {}),
        ("CategoricalCrossentropy", {"label_smoothing": 0.2}),
        ("SparseCategoricalCrossentropy", {}),
        ("BinaryCrossentropy", {"label_smoothing": 0.1}),
        ("CategoricalFocalCrossentropy", {"gamma": 1.5, "alpha": [0.1, 0.2, 0.3, 0.2, 0.2]}),
        ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "gamma": 0.5}),
    ],
)
def test_agrees_with_keras(name, kwargs, from_logits):
    rng = np.random.default_rng(len(name))
    # Keras' categorical focal loss goes through probabilities clipped at
    # 1e-7: logits of +-5 over 5 classes keep every probability above 1e-6.
    logit_range = 5.0 if name == "CategoricalFocalCrossentropy" else 50.0
    y_true, y_pred = _ordinary_inputs(from_logits, rng, logit_range)
    if name.startswith("Sparse"):
        y_true = np.argmax(y_true, -1).astype(np.int32)
    elif name.startswith("Binary"):
        y_pred = y_pred if from_logits else np.clip(y_pred * 3, 1e-6, 1 - 1e-6)
    ours = getattr(safeloss, name)(from_logits=from_logits, reduction="none", **kwargs)
    theirs = getattr(keras.losses, name)(from_logits=from_logits, reduction="none", **kwargs)
    expected = keras.ops.convert_to_numpy(theirs(y_true, y_pred))
    if BACKEND != "tensorflow" and name == "BinaryFocalCrossentropy" and from_logits:
        # Keras 3.15 gets this one wrong on JAX and PyTorch (on TensorFlow it
        # agrees with the formula): compare with the formula itself.
        formula = _binary_focal_formula(y_true, y_pred, **kwargs)
        assert not np.allclose(expected, formula, rtol=1e-3)
        expected = formula
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(y_true, y_pred)), expected, rtol=1e-6, atol=1e-7
    )


def _binary_focal_formula(y_true, logits, gamma, apply_class_balancing, alpha=0.25):
    """Keras' documented binary focal loss from logits, in float64."""
    y, x = y_true.astype(np.float64), logits.astype(np.float64)
    p = 1.0 / (1.0 + np.exp(-x))
    bce = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    p_t = y * p + (1 - y) * (1 - p)
    weight = (1 - p_t) ** gamma
    if apply_class_balancing:
        weight = weight * (y * alpha + (1 - y) * (1 - alpha))
    return np.mean(weight * bce, axis=-1)


def test_sparse_ignore_class_agrees_with_keras():
    rng = np.random.default_rng(3)
    y_pred = rng.standard_normal((8, 4)).astype(np.float32)
    labels = np.array([0, -1, 2, 3, -1, 1, 0, 2], np.int32)
    weights = rng.uniform(0.5, 2.0, 8).astype(np.float32)
    for reduction in ("sum_over_batch_size", "sum"):
        kwargs = dict(from_logits=True, ignore_class=-1, reduction=reduction)
        ours = safeloss.SparseCategoricalCrossentropy(**kwargs)(labels, y_pred, weights)
        theirs = keras.losses.SparseCategoricalCrossentropy(**kwargs)(labels, y_pred, weights)
        np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)
    all_ignored = safeloss.SparseCategoricalCrossentropy(ignore_class=-1)(
        np.full(8, -1, np.int32), np.abs(y_pred)
    )
    assert float(all_ignored) == 0.0


def test_class_axis_other_than_last():
    rng = np.random.default_rng(5)
    y_pred = rng.standard_normal((3, 4, 2)).astype(np.float32)
    y_true = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (3, 2))]
    moved = np.moveaxis(y_true, -1, 1)
    expected = safeloss.categorical_crossentropy(y_true, np.moveaxis(y_pred, 1, -1), from_logits=True)
    got = safeloss.categorical_crossentropy(moved, y_pred, from_logits=True, axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(expected), rtol=1e-6)
    sparse = safeloss.sparse_categorical_crossentropy(
        np.argmax(y_true, -1), y_pred, from_logits=True, axis=1
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(sparse), keras.ops.convert_to_numpy(expected), rtol=1e-6)


# ---------------------------------------------------------------------------
# Labels and arguments


def test_out_of_range_labels_raise_eagerly():
    y_pred = np.ones((3, 4), np.float32)
    for labels in ([0, 4, 1], [0, -3, 1]):
        bad = [v for v in labels if not 0 <= v < 4][0]
        with pytest.raises(ValueError, match=rf"label {bad}, outside the 4 classes"):
            safeloss.sparse_categorical_crossentropy(np.array(labels), y_pred)
    with pytest.raises(ValueError, match="label 9"):
        safeloss.SparseCategoricalCrossentropy(ignore_class=-1)(np.array([-1, 9, 0]), y_pred)


def _sparse_from_logits(labels, x):
    return safeloss.sparse_categorical_crossentropy(labels, x, from_logits=True)


# PyTorch has no compiled mode here (its `fit` runs eagerly and checks labels).
if "compiled" in MODES:

    def test_out_of_range_labels_count_as_ignored_when_compiled():
        """Compiled code cannot check values: the documented behaviour is a loss
        of 0 and no gradient for such a sample."""
        y_pred = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
        value, (_, grad) = value_and_grad(
            _sparse_from_logits, np.array([5, 0], np.int32), y_pred, compiled=True
        )
        assert float(value[0]) == 0.0 and all_finite(value)
        np.testing.assert_array_equal(grad[0], 0.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: safeloss.categorical_crossentropy(np.ones((2, 3)), np.ones((2, 4), np.float32)), r"y_true.*shape.*\(2, 4\).*\(2, 3\)"),
        (lambda: safeloss.categorical_crossentropy(np.ones((2, 3)), np.ones((2, 3), np.int32)), r"y_pred.*floating.*int32"),
        (lambda: safeloss.categorical_crossentropy(np.ones((2, 3)), np.ones((2, 3), np.float32), axis=True), r"axis.*int.*True"),
        (lambda: safeloss.binary_crossentropy(np.ones((2, 3)), np.ones((2, 3), np.float32), axis=2), r"axis.*\[-2, 2\).*2"),
        (lambda: safeloss.CategoricalCrossentropy(label_smoothing=1.5), r"label_smoothing.*\[0, 1\].*1.5"),
        (lambda: safeloss.BinaryFocalCrossentropy(gamma=-1.0), r"gamma.*non-negative.*-1.0"),
        (lambda: safeloss.categorical_focal_crossentropy(np.ones((2, 3)), np.ones((2, 3), np.float32), alpha=[0.5, 0.5]), r"alpha.*3 values.*2"),
        (lambda: safeloss.sparse_categorical_crossentropy(np.ones((2, 3)), np.ones((2, 3), np.float32)), r"y_true.*one class label.*\(2,\).*\(2, 3\)"),
        (lambda: safeloss.sparse_categorical_crossentropy(np.array([0.5, 1.0]), np.ones((2, 3), np.float32)), r"y_true.*non-integer value.*0.5"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_binary_accepts_a_missing_trailing_axis():
    y_pred = np.array([[0.2], [0.9]], np.float32)
    with_axis = safeloss.BinaryCrossentropy()(np.array([[0.0], [1.0]]), y_pred)
    without = safeloss.BinaryCrossentropy()(np.array([0.0, 1.0]), y_pred)
    assert float(with_axis) == float(without) == pytest.approx(-(np.log(0.8) + np.log(0.9)) / 2)


# ---------------------------------------------------------------------------
# Training


def _relu_classifier():
    return keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(
                2,
                activation="relu",
                kernel_initializer=keras.initializers.Constant([[1.0, 1.0], [0.5, 0.5]]),
                bias_initializer="zeros",
            ),
        ]
    )


def _relu_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    x[:16] = -np.abs(x[:16])  # these rows have all-zero ReLU outputs
    y = np.eye(2, dtype=np.float32)[(x[:, 0] > 0).astype(int)]
    return x, y


@pytest.mark.slow
def test_relu_model_trains_where_keras_gives_nan(tmp_path):
    x, y = _relu_data()
    keras.utils.set_random_seed(0)
    naive = _relu_classifier()
    naive.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy())
    assert np.isnan(naive.train_on_batch(x, y))

    keras.utils.set_random_seed(0)
    model = _relu_classifier()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=safeloss.CategoricalCrossentropy())
    step_losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: step_losses.append(logs["loss"])
    )
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0, shuffle=False, callbacks=[record])
    losses = history.history["loss"]
    assert len(step_losses) == 20 and np.all(np.isfinite(step_losses))
    assert losses[-1] < losses[0]
    assert all(all_finite(keras.ops.convert_to_numpy(w)) for w in model.weights)

    path = tmp_path / "relu.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # safe_mode=True by default
    assert type(restored.loss) is safeloss.CategoricalCrossentropy
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_allclose(
        restored.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
    )


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_computes_in_float32(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        x, y = _relu_data()
        model = _relu_classifier()
        loss = safeloss.CategoricalCrossentropy()
        model.compile(optimizer="sgd", loss=loss)
        output = model(x)
        assert keras.backend.standardize_dtype(output.dtype) == policy.split("_")[1]
        assert keras.backend.standardize_dtype(loss(y, output).dtype) == "float32"
        history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
    finally:
        keras.config.set_dtype_policy(previous)

