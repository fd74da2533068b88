"""NT-Xent and SupCon: float64 references, edges, reductions, bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import safeloss
from safeloss import ops as safe_ops
from safeloss.testing import all_finite, to_numpy, tolerances, value_and_grad
from safeloss.testing import strategies as S
from tests import references as ref
from tests.conftest import BACKEND

# Compiled functions are cached per temperature and input shape, and JAX
# compiles every eager op per shape: those tests draw one of two fixed cases
# (examples, dim, temperature), which the edge tests below reuse. NT-Xent
# takes (examples, 2, dim), SupCon (2 * examples, dim): the same rows inside.
FIXED_CASES = [(4, 3, 0.01), (3, 5, 1.0)]
TEMPERATURES = [0.01, 0.1, 1.0]


def draw_case(data, compiled, max_batch):
    if compiled or BACKEND == "jax":
        return data.draw(st.sampled_from(FIXED_CASES))
    batch, dim = data.draw(S.shapes(max_batch=max_batch))
    return batch, dim, data.draw(st.sampled_from(TEMPERATURES))



def ntxent(views, temperature=0.1):
    return safeloss.ntxent_loss(None, views, temperature=temperature)


def supcon(x, labels, temperature=0.1):
    return safeloss.supcon_loss(labels, x, temperature=temperature)


def assert_loss_close(value, expected, dtype, dim, rows, temperature):
    """Within the dtype's tolerance plus the conditioning of the problem.

    A cosine computed in the compute dtype is off by up to (dim + 2) units of
    round-off; the loss moves by at most 2 / T per unit of cosine (the
    softmax and the positives' weights each sum to 1), and the sum over
    `rows` exponentials adds `rows` round-offs.
    """
    tol = tolerances.TOLERANCES[dtype]
    u = tolerances.unit_roundoff(safe_ops.compute_dtype(dtype))
    conditioning = (2 * (dim + 2) / temperature + rows) * u
    assert str(np.asarray(value).dtype) == dtype
    np.testing.assert_allclose(
        np.asarray(value).astype(np.float64),
        expected,
        rtol=tol["rtol"],
        atol=tol["atol"] + conditioning,
    )


@given(data=st.data())
def test_ntxent_matches_reference(data, dtype, compiled, device):
    batch, dim, temperature = draw_case(data, compiled, max_batch=5)
    views = data.draw(S.stacked_embeddings(dtype, 2, (batch, dim)))
    value, (grad,) = value_and_grad(ntxent, views, compiled=compiled, temperature=temperature)
    assert value.shape == (batch,)
    assert str(grad.dtype) == dtype
    assert all_finite(value) and all_finite(grad)
    expected = ref.ntxent(views, temperature, dtype)
    assert_loss_close(value, expected, dtype, dim, 2 * batch, temperature)


@given(data=st.data())
def test_supcon_matches_reference(data, dtype, compiled, device):
    examples, dim, temperature = draw_case(data, compiled, max_batch=4)
    batch = 2 * examples
    x = data.draw(S.embeddings(dtype, (batch, dim)))
    labels = data.draw(S.labels(batch))
    value, (grad, _) = value_and_grad(supcon, x, labels, compiled=compiled, temperature=temperature)
    assert value.shape == (batch,)
    assert str(grad.dtype) == dtype
    assert all_finite(value) and all_finite(grad)
    expected = ref.supcon(labels, x, temperature, dtype)
    assert_loss_close(value, expected, dtype, dim, batch, temperature)
    alone = np.sum(labels[:, None] == labels[None, :], axis=1) == 1
    assert np.all(value[alone] == 0)
    np.testing.assert_array_equal(grad[alone & np.all(labels != labels[:, None], axis=0)], 0)


@pytest.mark.parametrize("batch, dim, temperature", FIXED_CASES)
def test_gradients_match_finite_differences(batch, dim, temperature, compiled):
    """The hand-written gradient against central differences of the
    float64 reference, identical views and a shared label included."""
    rng = np.random.default_rng(1)
    views = rng.standard_normal((batch, 2, dim))
    views[2, 1] = views[2, 0]
    _, (grad,) = value_and_grad(ntxent, views, compiled=compiled, temperature=temperature)
    expected = ref.numerical_gradient(lambda v: ref.ntxent(v, temperature, "float64"), views)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)

    x = rng.standard_normal((2 * batch, dim))
    labels = (np.arange(2 * batch) // 3).astype(np.int32)
    _, (grad, _) = value_and_grad(supcon, x, labels, compiled=compiled, temperature=temperature)
    expected = ref.numerical_gradient(lambda v: ref.supcon(labels, v, temperature, "float64"), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


def test_collapsed_batch_at_low_temperature(dtype, compiled, device):
    """All logits 1/T = 100: exp overflows float16 and float32 unshifted.
    Every term is log(n - 1) and the gradient vanishes."""
    views = np.full((4, 2, 3), 0.5, S.numpy_dtype(dtype))
    value, (grad,) = value_and_grad(ntxent, views, compiled=compiled, temperature=0.01)
    tolerances.assert_allclose(value, np.full(4, np.log(7.0)), dtype)
    np.testing.assert_allclose(grad.astype(np.float64), 0.0, atol=1e-3)

    x = views.reshape(8, 3)
    one_class = np.zeros(8, np.int32)
    value, (grad, _) = value_and_grad(supcon, x, one_class, compiled=compiled, temperature=0.01)
    tolerances.assert_allclose(value, np.full(8, np.log(7.0)), dtype)
    np.testing.assert_allclose(grad.astype(np.float64), 0.0, atol=1e-3)


def test_zero_embeddings_have_zero_gradient(dtype, compiled, device):
    """Zero rows have cosine 0 with everything; they do not move."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 3)).astype(S.numpy_dtype(dtype))
    x[[1, 2]] = 0
    labels = np.arange(8, dtype=np.int32) // 2
    value, (grad, _) = value_and_grad(supcon, x, labels, compiled=compiled, temperature=0.01)
    assert all_finite(value) and all_finite(grad)
    np.testing.assert_array_equal(grad[[1, 2]].astype(np.float64), 0.0)
    assert_loss_close(value, ref.supcon(labels, x, 0.01, dtype), dtype, 3, 8, 0.01)

    zeros = np.zeros((4, 2, 3), S.numpy_dtype(dtype))
    value, (grad,) = value_and_grad(ntxent, zeros, compiled=compiled, temperature=0.01)
    tolerances.assert_allclose(value, np.full(4, np.log(7.0)), dtype)
    np.testing.assert_array_equal(grad.astype(np.float64), 0.0)


def test_huge_and_tiny_magnitudes_give_the_loss_of_unit_rows(dtype, compiled):
    """Cosine similarity ignores scale: rows at a tenth of the dtype's
    largest value and near its smallest normal give the unit rows' loss."""
    rng = np.random.default_rng(3)
    # Entries of magnitude in [1/4, 1] times the scale: all normal numbers.
    unit = rng.uniform(0.25, 1.0, (4, 2, 3)) * rng.choice([-1.0, 1.0], (4, 2, 3))
    scales = np.array([S.max_magnitude(dtype) / 2, 16 * safe_ops.tiny(dtype), 1.0, 1.0])
    views = (unit * scales[:, None, None]).astype(S.numpy_dtype(dtype))
    value, (grad,) = value_and_grad(ntxent, views, compiled=compiled, temperature=0.01)
    assert all_finite(grad)
    expected = ref.ntxent(views, 0.01, dtype)
    assert_loss_close(value, expected, dtype, 3, 8, 0.01)


def test_all_distinct_labels_give_zero_and_a_zero_gradient(dtype, compiled):
    x = np.random.default_rng(4).standard_normal((8, 3)).astype(S.numpy_dtype(dtype))
    labels = np.arange(8, dtype=np.int32)

    def class_loss(t, y):
        return safeloss.SupConLoss(temperature=0.01, dtype=dtype)(y, t)

    value, (grad, _) = value_and_grad(class_loss, x, labels, compiled=compiled)
    assert float(value) == 0.0 and str(value.dtype) == dtype
    np.testing.assert_array_equal(grad.astype(np.float64), 0.0)


def test_matches_pytorch_metric_learning():
    """Values of pytorch-metric-learning 2.9 (float32, torch CPU) on these
    seeded inputs: NTXentLoss with labels = example index (rows interleaved
    as below) and SupConLoss, both with their default reducers."""
    rng = np.random.default_rng(6)
    views = rng.standard_normal((4, 2, 3)).astype(np.float32)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    pml = {
        ("ntxent", 0.1): 10.301838874816895,
        ("ntxent", 0.5): 3.051328659057617,
        ("supcon", 0.1): 8.778238296508789,
        ("supcon", 0.5): 2.7515037059783936,
    }
    for temperature in (0.1, 0.5):
        got = to_numpy(safeloss.NTXentLoss(temperature)(None, views))
        np.testing.assert_allclose(got, pml["ntxent", temperature], rtol=1e-6)
        # The last anchor has no positive and is left out of the mean.
        got = to_numpy(safeloss.SupConLoss(temperature)(labels, x))
        np.testing.assert_allclose(got, pml["supcon", temperature], rtol=1e-6)


def test_classes_compute_in_their_dtype():
    views = np.random.default_rng(5).standard_normal((3, 2, 4)).astype(np.float16)
    loss = safeloss.NTXentLoss(temperature=0.01, dtype="float16")
    value = to_numpy(loss(None, views))
    assert str(value.dtype) == "float16"
    expected = to_numpy(safeloss.ntxent_loss(None, views, temperature=0.01))
    tolerances.assert_allclose(value, expected.astype(np.float64).mean(), "float16")


def test_ntxent_sample_weight_is_per_example():
    views = np.random.default_rng(7).standard_normal((3, 2, 4)).astype(np.float32)
    per_example = to_numpy(safeloss.ntxent_loss(None, views))
    weights = np.array([1.0, 0.0, 2.0], np.float32)
    loss = safeloss.NTXentLoss()
    np.testing.assert_allclose(
        to_numpy(loss(None, views, sample_weight=weights)),
        np.sum(per_example * weights) / 3,
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        to_numpy(safeloss.NTXentLoss(reduction="none")(None, views)), per_example
    )


@pytest.mark.parametrize(
    "reduction, combine",
    [
        ("sum_over_batch_size", lambda v, w, valid: np.sum(v * w) / valid.sum()),
        ("mean", lambda v, w, valid: np.sum(v * w) / valid.sum()),
        ("mean_with_sample_weight", lambda v, w, valid: np.sum(v * w) / np.sum(w * valid)),
        ("sum", lambda v, w, valid: np.sum(v * w)),
        ("none", lambda v, w, valid: v * w),
    ],
)
def test_supcon_reductions_leave_out_anchors_without_positives(reduction, combine):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 3)).astype(np.float64)
    labels = np.array([[0], [0], [1], [2], [2]])
    weights = np.array([1.0, 2.0, 3.0, 0.5, 1.0])
    values = to_numpy(safeloss.supcon_loss(labels, x))
    valid = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
    loss = safeloss.SupConLoss(reduction=reduction, dtype="float64")
    np.testing.assert_allclose(
        to_numpy(loss(labels, x, sample_weight=weights)),
        combine(values, weights, valid),
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: safeloss.ntxent_loss(None, np.ones((4, 3), np.float32)), r"y_pred.*rank 3.*\(4, 3\)"),
        (lambda: safeloss.ntxent_loss(None, np.ones((4, 3, 2), np.float32)), r"y_pred.*two views.*\(4, 3, 2\)"),
        (lambda: safeloss.ntxent_loss(None, np.ones((4, 2, 3), np.int32)), r"y_pred.*floating.*int32"),
        (lambda: safeloss.supcon_loss([0, 1], np.ones((3, 2), np.float32)), r"y_true.*\(3,\).*\(2,\)"),
        (lambda: safeloss.supcon_loss([[0, 1]], np.ones((1, 2), np.float32)), r"y_true.*\(1,\).*\(1, 2\)"),
        (lambda: safeloss.supcon_loss([0.5, 1.0], np.ones((2, 2), np.float32)), r"y_true.*integer.*0\.5"),
        (lambda: safeloss.supcon_loss(None, np.ones((2, 2), np.float32)), r"y_true.*required"),
        (lambda: safeloss.supcon_loss([0, 1], np.ones((2, 2, 2), np.float32)), r"y_pred.*rank 2"),
        (lambda: safeloss.supcon_loss([0, 1], np.ones((2, 2), np.float32), temperature=1e-38), r"temperature.*at least.*float32"),
        (lambda: safeloss.NTXentLoss(temperature=0.0), r"temperature.*positive.*0\.0"),
        (lambda: safeloss.SupConLoss(temperature=float("nan")), r"temperature.*finite.*nan"),
        (lambda: safeloss.SupConLoss(temperature=True), r"temperature.*True"),
        (lambda: safeloss.SupConLoss(temperature="0.1"), r"temperature.*'0.1'"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()

