"""The three-input triplet loss: properties, edge points, the Keras class."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import safeloss
from safeloss.distances import DISTANCES
from safeloss.testing import tolerances, to_numpy, value_and_grad
from safeloss.testing import strategies as S
from tests import references as ref
from tests.conftest import BACKEND

# Compiled tests reuse a few shapes: each new shape recompiles.
FIXED_SHAPE = (5, 4)


def draw_shape(data, compiled):
    """Every new shape recompiles in compiled mode, and JAX compiles every op
    for every new shape eagerly too: those draw values for one fixed shape."""
    if compiled or BACKEND == "jax":
        return FIXED_SHAPE
    return data.draw(S.shapes(max_batch=6))


def finite(x):
    return bool(np.all(np.isfinite(np.asarray(x).astype(np.float64))))


def assert_matches_reference(value, a, p, n, margin, distance, soft, dtype):
    """Per-triplet check against the float64 definition.

    The loss subtracts two distances, so its error is relative to the
    distances, not to the (possibly much smaller) loss: the bound is
    ``rtol * (2 + dim) * (d_ap + d_an + margin) + atol`` (squared distances
    for "squared_euclidean"), with the dtype's tolerances.
    """
    assert str(value.dtype) == dtype
    expected = ref.triplet(a, p, n, margin, distance, soft, dtype)
    terms = []
    for ai, pi, ni in zip(a, p, n):
        d_ap = ref.pair_distance(ai, pi, distance, dtype)
        d_an = ref.pair_distance(ai, ni, distance, dtype)
        if distance == "squared_euclidean":
            x = ref.pair_distance(ai, pi, "euclidean", dtype)
            y = ref.pair_distance(ai, ni, "euclidean", dtype)
            with np.errstate(over="ignore"):
                d_ap, d_an = x * x + x * y, y * y + x * y
        terms.append(d_ap + d_an + margin + 1.0)
    tol = tolerances.TOLERANCES[dtype]
    bound = tol["rtol"] * (2 + a.shape[-1]) * np.asarray(terms) + tol["atol"]
    got = value.astype(np.float64)
    assert np.all(np.abs(got - expected) <= bound), (
        f"got {got!r}, expected {expected!r}, bound {bound!r}"
    )


VARIANTS = [(distance, soft) for distance in DISTANCES for soft in (False, True)]


def every_variant(anchor, positive, negative):
    """Each distance with either margin, divided by 8 (exact) so that their
    summed gradient cannot overflow: one compilation per test, not six."""
    return keras.ops.stack([
        safeloss.triplet_loss(anchor, positive, negative, distance=distance, soft=soft) / 8
        for distance, soft in VARIANTS
    ])


@given(data=st.data())
def test_triplet_loss_matches_reference_without_nan(data, dtype, compiled, device):
    shape = draw_shape(data, compiled)
    stack = data.draw(S.stacked_embeddings(dtype, 3, shape))
    a, p, n = stack[:, 0], stack[:, 1], stack[:, 2]
    value, grads = value_and_grad(every_variant, a, p, n, compiled=compiled)
    assert finite(value), value
    for g in grads:
        assert str(g.dtype) == dtype
        # Bounded everywhere: unit vectors for the Euclidean distance, a
        # sigmoid for the soft margin, 2 (a - p) for the squared distance
        # (summed over the variants: NaN or inf in any one shows).
        assert finite(g), g
    for i, (distance, soft) in enumerate(VARIANTS):
        loss = (value[i].astype(np.float64) * 8).astype(value.dtype)
        assert_matches_reference(loss, a, p, n, 1.0, distance, soft, dtype)


def reference_loss_sum(a, p, n, margin, distance, soft):
    return float(np.sum(ref.triplet(a, p, n, margin, distance, soft, "float64")))


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("soft", [False, True])
def test_gradient_matches_finite_differences(distance, soft, compiled):
    """float64 gradients against central differences of the reference, at
    points away from the hinge's kink and from zero distances; one triplet
    has positive == negative (equal distances, a tie in the hinge's input)."""
    rng = np.random.default_rng(4)
    a, p, n = rng.standard_normal((3, 4, 3))
    n[0] = p[0]
    margin = 0.5
    for sample in range(4):
        d = ref.triplet(a, p, n, margin, distance, False, "float64")[sample]
        assert d == 0 or d > 1e-3, "move the sample off the hinge's kink"
    _, grads = value_and_grad(
        safeloss.triplet_loss, a, p, n, compiled=compiled,
        margin=margin, distance=distance, soft=soft,
    )
    step = 1e-6
    inputs = [a, p, n]
    for which, grad in enumerate(grads):
        expected = np.zeros_like(grad)
        for index in np.ndindex(grad.shape):
            shifted = [x.copy() for x in inputs]
            shifted[which][index] += step
            up = reference_loss_sum(*shifted, margin, distance, soft)
            shifted[which][index] -= 2 * step
            down = reference_loss_sum(*shifted, margin, distance, soft)
            expected[index] = (up - down) / (2 * step)
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("distance", DISTANCES)
def test_anchor_equal_to_positive(distance, dtype, compiled):
    """The siamese story: d(a, p) = 0 is where the hand-written sqrt has an
    infinite slope and 0 * inf = NaN. The positive's gradient is 0 there."""
    np_dtype = S.numpy_dtype(dtype)
    a = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]], np_dtype)
    n = np.array([[0.5, -1.0, 2.5], [0.0, 0.25, 0.0]], np_dtype)
    value, (g_a, g_p, g_n) = value_and_grad(
        safeloss.triplet_loss, a, a.copy(), n, compiled=compiled,
        margin=1.0, distance=distance,
    )
    assert finite(g_a) and finite(g_p) and finite(g_n)
    assert_matches_reference(value, a, a, n, 1.0, distance, False, dtype)
    np.testing.assert_allclose(g_p.astype(np.float64), 0.0, atol=1e-6)
    if distance == "euclidean":
        # d(a, n) = 0.5 and 0.25 with the hinge active: -(a - n) / d(a, n).
        expected_n = np.array([[0, 0, -1.0], [0, -1.0, 0]])
        tolerances.assert_allclose(g_n, expected_n, dtype)
        tolerances.assert_allclose(g_a, -expected_n, dtype)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("distance", DISTANCES)
def test_all_three_identical(soft, distance, dtype, compiled):
    """A collapsed encoder, at zero and elsewhere: every loss is the margin
    (through the soft margin if set), every gradient 0."""
    x = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 1e-3]], S.numpy_dtype(dtype))
    value, grads = value_and_grad(
        safeloss.triplet_loss, x, x.copy(), x.copy(), compiled=compiled,
        margin=2.0, distance=distance, soft=soft,
    )
    expected = float(ref.softplus(2.0)) if soft else 2.0
    tolerances.assert_allclose(value, [expected, expected], dtype)
    for g in grads:
        assert finite(g)
        np.testing.assert_allclose(g.astype(np.float64), 0.0, atol=1e-6)


def cosine_gradient(x, y):
    """d cos(x, y) / dx = (y_hat - cos x_hat) / ||x||, in float64."""
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    cos = x @ y / (nx * ny)
    return (y / ny - cos * x / nx) / nx


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
def test_extreme_magnitudes(distance, dtype, compiled):
    """Triplets at 1e-30 and 1e30: squares of 1e30 overflow float32 and
    bfloat16 and squares of 1e-30 underflow to 0, so the textbook formula
    returns inf or a NaN gradient. Values and gradients are exact here."""
    unit = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    scales = np.array([1e-30, 1e30])[:, None, None]
    a, p, n = np.moveaxis(scales * unit, 1, 0).astype(S.numpy_dtype(dtype))
    value, (g_a, g_p, g_n) = value_and_grad(
        safeloss.triplet_loss, a, p, n, compiled=compiled,
        margin=0.0, distance=distance,
    )
    expected = ref.triplet(a, p, n, 0.0, distance, False, dtype)
    tolerances.assert_allclose(value, expected, dtype, scale=4)
    assert finite(g_a)
    for i in range(2):
        a64, p64, n64 = (ref.as_float64(x[i]) for x in (a, p, n))
        if distance == "euclidean":
            want_p = -(a64 - p64) / np.linalg.norm(a64 - p64)
            want_n = (a64 - n64) / np.linalg.norm(a64 - n64)
        else:
            want_p = -cosine_gradient(p64, a64)
            want_n = cosine_gradient(n64, a64)
        tolerances.assert_allclose(g_p[i], want_p, dtype, scale=4)
        tolerances.assert_allclose(g_n[i], want_n, dtype, scale=4)


def test_float16_at_300(compiled):
    """300**2 * 3 overflows float16 (max 65504) in the textbook formula."""
    a = np.array([[300.0, 300.0, 300.0]], np.float16)
    p, n = -a, np.array([[300.0, 300.0, -300.0]], np.float16)
    value, grads = value_and_grad(
        safeloss.triplet_loss, a, p, n, compiled=compiled, distance="euclidean"
    )
    tolerances.assert_allclose(value, [600 * 3**0.5 - 600 + 1], "float16")
    tolerances.assert_allclose(grads[1], -np.ones((1, 3)) / 3**0.5, "float16")
    tolerances.assert_allclose(grads[2], [[0.0, 0.0, 1.0]], "float16")
    # 1080000 - 360000 + 1 saturates at float16's largest value, not inf.
    squared, grads = value_and_grad(
        safeloss.triplet_loss, a, p, n, compiled=compiled,
        distance="squared_euclidean",
    )
    assert float(squared[0]) == 65504.0
    assert all(finite(g) for g in grads)


def test_soft_margin_does_not_overflow():
    """softplus(x) = log(1 + exp(x)) is inf above 88.7 in float32."""
    a = np.zeros((1, 2), np.float32)
    p = np.array([[1e3, 0.0]], np.float32)
    value, grads = value_and_grad(safeloss.triplet_loss, a, p, a.copy(), soft=True)
    tolerances.assert_allclose(value, [1001.0], "float32")
    tolerances.assert_allclose(grads[1], [[1.0, 0.0]], "float32")


def stacked(a, p, n):
    return np.stack([a, p, n], axis=1)


def test_class_matches_function_and_ignores_y_true():
    rng = np.random.default_rng(0)
    a, p, n = rng.standard_normal((3, 5, 4)).astype(np.float32)
    expected = to_numpy(safeloss.triplet_loss(a, p, n, margin=2.0, soft=True))
    loss = safeloss.TripletLoss(margin=2.0, soft=True, reduction="none")
    for y_true in (None, np.zeros(5), np.zeros((5, 7), np.int32)):
        np.testing.assert_allclose(to_numpy(loss(y_true, stacked(a, p, n))), expected, rtol=1e-6)
    mean = safeloss.TripletLoss(margin=2.0, soft=True)(None, stacked(a, p, n))
    np.testing.assert_allclose(to_numpy(mean), expected.mean(), rtol=1e-6)


def test_class_dtype():
    x = np.ones((2, 3, 4), np.float32)
    assert str(to_numpy(safeloss.TripletLoss(dtype="float64")(None, x)).dtype) == "float64"
    assert str(to_numpy(safeloss.TripletLoss(dtype="float16")(None, x)).dtype) == "float16"


def test_mining_is_validated_and_kept_in_config():
    with pytest.raises(ValueError, match=r"mining.*batch_all.*batch_hard.*semi_hard.*'hard'"):
        safeloss.TripletLoss(mining="hard")
    assert safeloss.TripletLoss().label_kind == "ignored"
    for mode in ("batch_all", "batch_hard", "semi_hard"):
        loss = safeloss.TripletLoss(mining=mode)
        assert loss.label_kind == "integer"
        assert loss.get_config()["mining"] == mode
        assert safeloss.TripletLoss.from_config(loss.get_config()).mining == mode
    assert safeloss.TripletLoss().get_config()["mining"] is None


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: safeloss.TripletLoss()(None, np.ones((4, 2, 3), np.float32)), r"y_pred.*\(batch, 3, dim\).*\(4, 2, 3\)"),
        (lambda: safeloss.TripletLoss()(None, np.ones((4, 3), np.float32)), r"y_pred.*\(batch, 3, dim\).*\(4, 3\)"),
        (lambda: safeloss.TripletLoss(distance="manhattan"), r"distance.*'manhattan'"),
        (lambda: safeloss.TripletLoss(margin=-1.0), r"margin.*>= 0.*-1\.0"),
        (lambda: safeloss.TripletLoss(margin=float("nan")), r"margin.*finite.*nan"),
        (lambda: safeloss.triplet_loss(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 4))), r"negative.*\(2, 3\).*\(2, 4\)"),
        (lambda: safeloss.triplet_loss(np.ones(3), np.ones(3), np.ones(3)), r"rank 2.*\(3,\)"),
        (lambda: safeloss.triplet_loss(np.ones((2, 3), np.int32), np.ones((2, 3)), np.ones((2, 3))), r"anchor.*floating.*int32"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def naive_triplet(y_true, y_pred):
    """The hand-written loss of the classic siamese examples."""
    ops = keras.ops
    d_ap = ops.sqrt(ops.sum(ops.square(y_pred[:, 0] - y_pred[:, 1]), axis=-1))
    d_an = ops.sqrt(ops.sum(ops.square(y_pred[:, 0] - y_pred[:, 2]), axis=-1))
    return ops.mean(ops.maximum(d_ap - d_an + 2.0, 0.0))


def triplet_model():
    """Embeds the three members of each input with one shared Dense layer."""
    inputs = keras.Input((3, 6))
    return keras.Model(inputs, keras.layers.Dense(4)(inputs))


def all_weights_finite(model):
    return all(finite(keras.ops.convert_to_numpy(w)) for w in model.weights)


@pytest.mark.slow
def test_training_with_anchors_equal_to_positives(tmp_path):
    """Anchors equal positives in every batch: safeloss trains with finite
    loss and weights at every step, and the model reloads in safe mode;
    the hand-written loss turns the weights NaN on the first step."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 6)).astype(np.float32)
    x[:, 1] = x[:, 0]

    keras.utils.set_random_seed(0)
    naive = triplet_model()
    naive.compile(optimizer="sgd", loss=naive_triplet)
    naive.train_on_batch(x[:8], np.zeros(8))
    assert not all_weights_finite(naive), "the naive loss should fail here"

    keras.utils.set_random_seed(0)
    model = triplet_model()
    model.compile(optimizer="adam", loss=safeloss.TripletLoss(margin=2.0))
    steps = []

    class Check(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append((logs["loss"], all_weights_finite(self.model)))

    model.fit(x, epochs=1, batch_size=8, verbose=0, callbacks=[Check()])
    assert len(steps) == 4
    assert all(np.isfinite(loss) and ok for loss, ok in steps), steps

    path = tmp_path / "triplet.keras"
    model.save(path)
    restored = keras.saving.load_model(path)  # safe_mode=True by default
    assert isinstance(restored.loss, safeloss.TripletLoss)
    assert restored.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
