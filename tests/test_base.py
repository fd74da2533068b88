"""The loss base class: labels, reduction, dtype, config, bad input."""

import keras
import numpy as np
import pytest

from safeloss.losses import SafeLoss, reduce_losses
from safeloss.testing import to_numpy
from tests.conftest import BACKEND


@keras.saving.register_keras_serializable(package="safeloss_tests")
class LabelEcho(SafeLoss):
    """Returns the labels as the loss, to show what `call` receives."""

    def call(self, y_true, y_pred):
        self.seen_dtype = keras.backend.standardize_dtype(y_true.dtype)
        return keras.ops.cast(y_true, self.dtype) + 0.0 * y_pred[:, 0]


@keras.saving.register_keras_serializable(package="safeloss_tests")
class PredictionMean(SafeLoss):
    """Ignores y_true: the mean of y_pred per sample."""

    label_kind = "ignored"

    def call(self, y_true, y_pred):
        assert y_true is None
        return keras.ops.mean(y_pred, axis=-1)


def test_y_true_none_is_accepted_when_ignored():
    y_pred = np.array([[1.0, 3.0], [5.0, 7.0]], np.float32)
    loss = PredictionMean()
    assert float(to_numpy(loss(None, y_pred))) == pytest.approx(4.0)


def test_y_true_none_is_rejected_when_labels_are_needed():
    with pytest.raises(ValueError, match="y_true.*required.*None"):
        LabelEcho()(None, np.zeros((2, 1), np.float32))


def test_integer_labels_stay_integers_in_float16():
    labels = np.array([2049, 2050, 2051], np.int64)
    loss = LabelEcho(dtype="float32", reduction="none")
    values = to_numpy(loss(labels, np.zeros((3, 1), np.float16)))
    assert loss.seen_dtype == "int32"
    np.testing.assert_array_equal(values, [2049, 2050, 2051])


def test_integer_valued_float_labels_become_int32():
    loss = LabelEcho(reduction="none")
    values = to_numpy(loss(np.array([0.0, 3.0]), np.zeros((2, 1), np.float32)))
    assert loss.seen_dtype == "int32"
    np.testing.assert_array_equal(values, [0, 3])


def test_fractional_labels_raise():
    with pytest.raises(ValueError, match=r"y_true.*integer.*0\.5"):
        LabelEcho()(np.array([0.5, 1.0]), np.zeros((2, 1), np.float32))


def test_boolean_labels_raise():
    with pytest.raises(ValueError, match="y_true.*bool"):
        LabelEcho()(np.array([True, False]), np.zeros((2, 1), np.float32))


def test_integer_y_pred_raises():
    with pytest.raises(ValueError, match="y_pred.*floating.*int32"):
        PredictionMean()(None, np.zeros((2, 1), np.int32))


@pytest.mark.parametrize(
    "reduction, expected",
    [
        ("sum_over_batch_size", (1 * 1 + 2 * 3 + 3 * 0) / 3),
        ("mean", (1 * 1 + 2 * 3 + 3 * 0) / 3),
        ("sum", 7.0),
        ("mean_with_sample_weight", 7.0 / 4),
        ("none", [1.0, 6.0, 0.0]),
        (None, [1.0, 6.0, 0.0]),
    ],
)
def test_reductions(reduction, expected, dtype):
    values = keras.ops.convert_to_tensor(np.array([1.0, 2.0, 3.0], dtype))
    weights = np.array([1.0, 3.0, 0.0], np.float32)
    result = to_numpy(reduce_losses(values, weights, reduction))
    assert str(result.dtype) == dtype
    np.testing.assert_allclose(result.astype(np.float64), expected, rtol=1e-2)


def test_reduction_keeps_float64():
    values = keras.ops.convert_to_tensor(np.array([1.0, 2.0], np.float64))
    result = to_numpy(reduce_losses(values, None, "sum_over_batch_size"))
    assert result.dtype == np.float64


def test_empty_batch_reduces_to_zero():
    values = keras.ops.convert_to_tensor(np.zeros((0,), np.float32))
    assert float(to_numpy(reduce_losses(values))) == 0.0


def test_sample_weight_of_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"sample_weight.*\(3,\).*\(2,\)"):
        PredictionMean()(None, np.zeros((3, 2), np.float32), sample_weight=np.ones(2))


def test_sample_weight_with_trailing_axis_is_accepted():
    y_pred = np.array([[1.0], [3.0]], np.float32)
    value = PredictionMean(reduction="sum")(None, y_pred, sample_weight=np.array([[2.0], [1.0]]))
    assert float(to_numpy(value)) == pytest.approx(5.0)


def test_invalid_reduction_raises():
    with pytest.raises(ValueError, match="reduction.*'average'"):
        PredictionMean(reduction="average")


def test_get_config_has_dtype_and_round_trips():
    loss = PredictionMean(reduction="sum", name="m", dtype="float64")
    config = loss.get_config()
    assert config == {"name": "m", "reduction": "sum", "dtype": "float64"}
    clone = PredictionMean.from_config(config)
    assert clone.dtype == "float64" and clone.reduction == "sum"
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, PredictionMean) and restored.dtype == "float64"


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_returns_float32(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        loss = PredictionMean()
        y_pred = np.ones((2, 3), policy.replace("mixed_", ""))
        value = to_numpy(loss(None, keras.ops.convert_to_tensor(y_pred)))
        assert value.dtype == np.float32
    finally:
        keras.config.set_dtype_policy(previous)


def test_fit_without_targets_trains():
    """`fit(x)` with no y calls the loss with y_true=None (Keras' own Loss
    fails there on every backend)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=PredictionMean())
    history = model.fit(np.ones((8, 3), np.float32), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_backend_is_the_one_requested():
    import os

    assert BACKEND == os.environ["KERAS_BACKEND"]


def test_float16_reduction_does_not_overflow():
    values = keras.ops.convert_to_tensor(np.full(8, 60000.0, np.float16))
    mean = to_numpy(reduce_losses(values))
    total = to_numpy(reduce_losses(values, reduction="sum"))
    assert mean.dtype == np.float16 and float(mean) == 60000.0
    # The exact sum is beyond float16: it saturates instead of becoming inf.
    assert float(total) == float(np.finfo(np.float16).max)


def test_mean_divides_by_the_run_time_batch_size():
    """Under `tf.function` with an unknown batch dimension the count must be
    read when the function runs, not when it is traced."""
    values = np.array([1.0, 2.0, 6.0], np.float32)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        reduce = tf.function(
            reduce_losses, input_signature=[tf.TensorSpec([None], tf.float32)]
        )
    else:
        reduce = reduce_losses
    assert float(to_numpy(reduce(values))) == pytest.approx(3.0)
    assert float(to_numpy(reduce(values[:2]))) == pytest.approx(1.5)
