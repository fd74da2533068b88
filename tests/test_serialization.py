"""Every public loss: config round trip and `.keras` save/load in safe mode."""

import inspect

import keras
import numpy as np
import pytest

import safeloss
from tests.loss_examples import LOSS_EXAMPLES


def public_loss_classes():
    return sorted(
        name
        for name in safeloss.__all__
        if inspect.isclass(getattr(safeloss, name))
        and issubclass(getattr(safeloss, name), keras.losses.Loss)
    )


def test_every_public_loss_has_an_example():
    missing = set(public_loss_classes()) - set(LOSS_EXAMPLES)
    assert not missing, f"add entries to tests/loss_examples.py for {missing}"


LOSSES = public_loss_classes()


@pytest.mark.parametrize("name", LOSSES)
def test_config_round_trip(name):
    cls = getattr(safeloss, name)
    example = LOSS_EXAMPLES[name]
    loss = cls(**example.kwargs, reduction="sum", dtype="float64")
    config = loss.get_config()
    assert config["dtype"] == "float64"
    assert config["reduction"] == "sum"
    for key, value in example.kwargs.items():
        assert config[key] == value, key
    assert cls.from_config(config).get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls
    assert restored.get_config() == config


def _model(example):
    size = int(np.prod(example.y_pred_shape))
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(size),
            keras.layers.Reshape(example.y_pred_shape),
        ]
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", LOSSES)
def test_keras_save_and_safe_mode_load(name, tmp_path):
    cls = getattr(safeloss, name)
    example = LOSS_EXAMPLES[name]
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y = example.make_y_true(8, rng)
    model = _model(example)
    model.compile(optimizer="adam", loss=cls(**example.kwargs))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)

    restored = keras.saving.load_model(path)  # safe_mode=True by default

    assert type(restored.loss) is cls
    assert restored.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    after = model.train_on_batch(x, y)
    after_restored = restored.train_on_batch(x, y)
    np.testing.assert_allclose(after_restored, after, rtol=1e-5)
