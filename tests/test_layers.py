"""The Lambda replacements: loss and distance layers, IdentityLoss, and
safe-mode save/load of models built with them."""

import keras
import numpy as np
import pytest

import safeloss
from safeloss.layers import ContrastiveLossLayer, Distance, L2Normalize, TripletLossLayer
from safeloss.testing import all_finite, to_numpy, value_and_grad

DIM = 4

LAYERS = {
    "TripletLossLayer": (TripletLossLayer, {"margin": 0.5, "distance": "cosine", "soft": True}, 3),
    "ContrastiveLossLayer": (ContrastiveLossLayer, {"margin": 2.0, "distance": "squared_euclidean"}, 3),
    "Distance": (Distance, {"distance": "cosine"}, 2),
    "L2Normalize": (L2Normalize, {"axis": 1}, 1),
}



def layer_model(name):
    """Inputs -> shared Dense encoder -> the layer -> a (batch, 1) output."""
    cls, kwargs, count = LAYERS[name]
    encoder = keras.layers.Dense(DIM, name="encoder")
    inputs = [keras.Input((DIM,), name=f"in{i}") for i in range(count)]
    if name == "ContrastiveLossLayer":
        first, second, similar = inputs
        similar = keras.layers.Dense(1, activation="sigmoid")(similar)
        output = cls(**kwargs)([encoder(first), encoder(second), similar])
    elif name == "L2Normalize":
        output = keras.layers.Dense(1)(cls(**kwargs)(encoder(inputs[0])))
    else:
        output = cls(**kwargs)([encoder(x) for x in inputs])
    return keras.Model(inputs, output), count


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip(name):
    cls, kwargs, _ = LAYERS[name]
    layer = cls(**kwargs, dtype="float64", name="custom")
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value, key
    restored = cls.from_config(config)
    assert restored.get_config() == config
    assert restored.dtype_policy.name == "float64"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_model_saves_and_loads_in_safe_mode(name, tmp_path):
    keras.utils.set_random_seed(2)
    model, count = layer_model(name)
    model.compile(optimizer="adam", loss=safeloss.IdentityLoss())
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((8, DIM)).astype(np.float32) for _ in range(count)]
    model.fit(x, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)

    restored = keras.saving.load_model(path)  # safe mode, no custom_objects

    assert isinstance(restored.loss, safeloss.IdentityLoss)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )
    np.testing.assert_allclose(
        restored.train_on_batch(x), model.train_on_batch(x), rtol=1e-5
    )


def test_lambda_loss_model_does_not_load_in_safe_mode(tmp_path):
    """What the layers replace: a Lambda makes the file unloadable."""
    inputs = keras.Input((DIM,))
    output = keras.layers.Lambda(lambda t: keras.ops.sum(t, axis=-1, keepdims=True))(inputs)
    model = keras.Model(inputs, output)
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match="lambda"):
        keras.saving.load_model(path)


def test_distance_is_finite_at_zero_and_for_huge_embeddings():
    layer = Distance()
    same = np.ones((2, DIM), np.float32)
    value, (grad,) = value_and_grad(lambda a: layer([a, same]), same)
    assert np.all(value == 0) and all_finite(grad)
    huge = np.full((2, DIM), 1e30, np.float32)
    distance = to_numpy(layer([huge, -huge]))
    np.testing.assert_allclose(distance[:, 0], 2e30 * np.sqrt(DIM), rtol=1e-6)


def test_l2_normalize_keeps_zero_vectors_zero():
    layer = L2Normalize()
    x = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    value, (grad,) = value_and_grad(lambda v: layer(v), x)
    np.testing.assert_allclose(value, [[0.0, 0.0], [0.6, 0.8]], rtol=1e-6)
    assert all_finite(grad)


def test_triplet_layer_matches_the_function():
    rng = np.random.default_rng(1)
    a, p, n = (rng.standard_normal((5, DIM)).astype(np.float32) for _ in range(3))
    got = to_numpy(TripletLossLayer(margin=0.3)([a, p, n]))
    expected = to_numpy(safeloss.triplet_loss(a, p, n, margin=0.3))
    assert got.shape == (5, 1)
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-6)


@pytest.mark.parametrize(
    "layer, inputs",
    [
        (TripletLossLayer(), [np.zeros((2, 3), np.float32)] * 2),
        (Distance(), [np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)]),
        (ContrastiveLossLayer(), [np.zeros((2, 3), np.float32)] * 2),
    ],
)
def test_wrong_inputs_raise(layer, inputs):
    with pytest.raises(ValueError, match="expects"):
        layer(inputs)


def siamese_model(margin=1.0):
    encoder = keras.Sequential(
        [keras.Input((DIM,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(DIM)],
        name="encoder",
    )
    inputs = [keras.Input((DIM,), name=name) for name in ("anchor", "positive", "negative")]
    loss = TripletLossLayer(margin=margin)([encoder(x) for x in inputs])
    model = keras.Model(inputs, loss)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=safeloss.IdentityLoss())
    return model


def weights_finite(model):
    return all(all_finite(w) for w in model.get_weights())


def test_siamese_story_trains_saves_reloads_and_continues(tmp_path):
    """Anchors equal to positives: the hand-written sqrt would give NaN."""
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    anchor = rng.standard_normal((16, DIM)).astype(np.float32)
    negative = rng.standard_normal((16, DIM)).astype(np.float32)
    x = [anchor, anchor.copy(), negative]
    model = siamese_model()
    for _ in range(5):
        loss = model.train_on_batch(x)
        assert np.isfinite(loss) and weights_finite(model)
    path = tmp_path / "siamese.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.train_on_batch(x), model.train_on_batch(x), rtol=1e-5)
    history = restored.fit(x, epochs=2, batch_size=8, verbose=0)
    assert all(np.isfinite(history.history["loss"])) and weights_finite(restored)


def test_add_loss_alternative_trains_without_targets():
    """The documented alternative: the layer adds its loss, compile has none."""

    @keras.saving.register_keras_serializable(package="safeloss_tests")
    class AddedTripletLoss(TripletLossLayer):
        def call(self, inputs):
            per_sample = super().call(inputs)
            self.add_loss(keras.ops.mean(per_sample))
            return per_sample

    keras.utils.set_random_seed(4)
    encoder = keras.layers.Dense(DIM)
    inputs = [keras.Input((DIM,)) for _ in range(3)]
    model = keras.Model(inputs, AddedTripletLoss()([encoder(x) for x in inputs]))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    rng = np.random.default_rng(4)
    x = [rng.standard_normal((8, DIM)).astype(np.float32) for _ in range(3)]
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, epochs=2, batch_size=8, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][0] > 0
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_layers_compute_in_float32_under_mixed_precision(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = siamese_model()
        assert model.layers[-1].compute_dtype == "float32"
        rng = np.random.default_rng(5)
        big = (300 * rng.standard_normal((8, DIM))).astype(np.float32)
        x = [big, big.copy(), -big]
        history = model.fit(x, epochs=2, batch_size=8, verbose=0)
        assert all(np.isfinite(history.history["loss"])) and weights_finite(model)
        assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


def test_get_returns_instances_by_name_and_config():
    assert isinstance(safeloss.get("TripletLoss"), safeloss.TripletLoss)
    assert isinstance(safeloss.get("identity_loss"), safeloss.IdentityLoss)
    loss = safeloss.TripletLoss(margin=0.25)
    assert safeloss.get(loss) is loss
    restored = safeloss.get(keras.losses.serialize(loss))
    assert isinstance(restored, safeloss.TripletLoss) and restored.get_config() == loss.get_config()
    assert isinstance(keras.losses.get(keras.losses.serialize(loss)), safeloss.TripletLoss)
    with pytest.raises(ValueError, match="Unknown safeloss loss 'tripletloss'.*triplet_loss"):
        safeloss.get("tripletloss")
    with pytest.raises(ValueError, match="identifier"):
        safeloss.get(3)
