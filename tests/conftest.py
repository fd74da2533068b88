"""Test configuration: backend set-up, hypothesis profiles, the test matrix.

The suite runs once per backend (``KERAS_BACKEND=tensorflow|jax|torch``).
Every numeric test is parametrized over the four dtypes, the modes that
exist on the backend (eager everywhere; compiled with XLA on TensorFlow and
`jax.jit` on JAX; PyTorch has no compiled mode here) and one device per
device type the backend sees.
"""

import os

# Both must be set before keras (and so jax) is imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from safeloss.testing import COMPILED_BACKENDS, device_types  # noqa: E402
from safeloss.testing.strategies import DTYPES  # noqa: E402

BACKEND = keras.backend.backend()

# Fixtures here are parameters (dtype, mode), never state, so sharing them
# across examples is safe.
_SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
]
# Deterministic and reproducible: CI must not depend on a database or luck.
# Ten examples per test keep the three-backend run inside CI's time on two
# cores; the edge cases come first in every strategy, and the explicit edge
# tests pin the rest. The "long" profile is the soak.
settings.register_profile(
    "ci",
    max_examples=10,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
# 50 times the ci profile, for a local soak before a release.
settings.register_profile(
    "long",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
settings.load_profile(os.environ.get("SAFELOSS_HYPOTHESIS_PROFILE", "ci"))


def _disable_reduced_precision_matmul():
    """Turns off TF32 so float32 means float32 on GPUs too."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
    elif BACKEND == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    elif BACKEND == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


_disable_reduced_precision_matmul()

MODES = ("eager", "compiled") if BACKEND in COMPILED_BACKENDS else ("eager",)
DEVICES = tuple(device_types())


def pytest_report_header(config):
    import numpy

    lines = [f"safeloss backend: {BACKEND}; devices: {', '.join(DEVICES)}"]
    versions = {"keras": keras.__version__, "numpy": numpy.__version__}
    if BACKEND == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    elif BACKEND == "jax":
        import jax

        versions["jax"] = jax.__version__
    else:
        import torch

        versions["torch"] = torch.__version__
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines.append(f"hypothesis profile: {settings().max_examples} examples per test")
    return lines


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture(params=DEVICES)
def device(request):
    with keras.device(request.param):
        yield request.param


@pytest.fixture
def compiled(mode):
    return mode == "compiled"
