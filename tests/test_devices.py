"""Device enumeration: the suite runs on every device type the backend sees."""

import os
import subprocess
import sys
import textwrap

import pytest

from safeloss.testing import device_types, list_devices
from tests.conftest import BACKEND

_TWO_CPUS = {
    "tensorflow": """
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    """,
    "jax": "",
}


def test_the_device_types_include_the_cpu():
    assert device_types()[0] == "cpu:0"
    assert set(device_types()) <= set(list_devices())


@pytest.mark.slow
def test_two_logical_cpus_are_enumerated():
    """Configured before the framework starts, as a multi-device user would.

    TensorFlow and JAX only: PyTorch has no logical CPU devices. The torch
    process does not collect this test (see the end of this module).
    """
    backend = BACKEND
    script = textwrap.dedent(_TWO_CPUS[backend]) + textwrap.dedent(
        """
        from safeloss.testing import device_types, list_devices
        print(list_devices(), device_types())
        """
    )
    env = dict(os.environ, KERAS_BACKEND=backend, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "['cpu:0', 'cpu:1'] ['cpu:0']" in result.stdout


def test_backend_matches_environment():
    assert BACKEND == os.environ["KERAS_BACKEND"]


if BACKEND not in _TWO_CPUS:
    del test_two_logical_cpus_are_enumerated
