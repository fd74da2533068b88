"""Losses under `tf.distribute` and `keras.distribution` (the `global_batch` option).

The two-device checks run `tests/distribute_child.py` in a subprocess: the
two logical CPU devices must be configured before the framework starts. It
trains one step of a small model (batch 16, dim 8, SGD) on one device and on
two, every loss on its own head, and reports the weight differences.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import safeloss
from safeloss.losses._distribute import replica_context_to_gather
from tests.conftest import BACKEND

# float32 steps of size 0.05 to 2 that agree up to summation order differ
# by a few 1e-7 (measured: at most 3e-7); a per-replica step differs by
# more than 0.01.
WEIGHT_TOLERANCE = 1e-5

COUNT_NORMALISED = {
    "TripletLoss": dict(mining="batch_all"),
    "TripletSemiHardLoss": {},
    "TripletHardLoss": {},
    "NTXentLoss": {},
    "SupConLoss": {},
}


@pytest.fixture(scope="module")
def two_device_report():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(
        os.environ,
        KERAS_BACKEND=BACKEND,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.distribute_child"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["replicas"] == 2
    return report


def _assert_same_step(results):
    for name, result in results.items():
        # A step of 0 would make the comparison vacuous.
        assert result["step"] > 1e-2, name
        assert result["weight_difference"] <= WEIGHT_TOLERANCE, (name, result)
        np.testing.assert_allclose(
            result["multi_loss"], result["single_loss"], rtol=1e-5, err_msg=name
        )


if BACKEND == "tensorflow":

    @pytest.mark.slow
    def test_mirrored_strategy_step_equals_one_device(two_device_report):
        """Per-sample losses as they are, count-normalised ones with the
        option; the per-replica default differs, so the check can fail."""
        _assert_same_step(two_device_report["per_sample"])
        _assert_same_step(two_device_report["global_batch"])
        assert set(two_device_report["global_batch"]) == {
            "TripletLoss(batch_all)", "TripletSemiHardLoss", "TripletHardLoss",
            "NTXentLoss", "SupConLoss",
        }
        for name, result in two_device_report["per_replica"].items():
            assert result["weight_difference"] > 1e-2, (name, result)
        # reduction="none": the replicas' own rows, concatenated, are the
        # single-device values.
        for name, difference in two_device_report["none_reduction"].items():
            assert difference <= 1e-5, (name, difference)

elif BACKEND == "jax":

    @pytest.mark.slow
    def test_data_parallel_step_equals_one_device(two_device_report):
        """DataParallel hands the loss the global batch: every loss matches,
        with the option on and with the default."""
        for group in ("per_sample", "global_batch", "per_replica"):
            _assert_same_step(two_device_report[group])

else:

    def test_keras_has_no_distribution_backend_for_torch():
        """docs/multi-device.md says the option has nothing to act on with
        PyTorch; this fails when Keras gains a distribution backend."""
        with pytest.raises(AttributeError):
            keras.distribution.list_devices()


def test_no_replica_context_to_gather_without_a_strategy():
    assert replica_context_to_gather() is None


def _inputs(name, rng):
    if name == "NTXentLoss":
        return None, rng.standard_normal((8, 2, 4)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 3], np.int32)
    return labels, rng.standard_normal((8, 4)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(COUNT_NORMALISED))
def test_option_is_a_no_op_without_a_strategy(name):
    """On one device (and on every backend without tf.distribute) the option
    is accepted and gives the plain loss, sample weights included."""
    cls = getattr(safeloss, name)
    rng = np.random.default_rng(0)
    y_true, y_pred = _inputs(name, rng)
    weights = rng.uniform(0.5, 1.5, 8).astype(np.float32)
    plain = cls(**COUNT_NORMALISED[name])(y_true, y_pred, weights)
    gathered = cls(global_batch=True, **COUNT_NORMALISED[name])(y_true, y_pred, weights)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(gathered), keras.ops.convert_to_numpy(plain)
    )


@pytest.mark.parametrize("name", sorted(COUNT_NORMALISED))
def test_option_survives_the_config_round_trip(name):
    cls = getattr(safeloss, name)
    assert cls(**COUNT_NORMALISED[name]).get_config()["global_batch"] is False
    config = cls(global_batch=True, **COUNT_NORMALISED[name]).get_config()
    assert config["global_batch"] is True
    assert cls.from_config(config).global_batch is True
