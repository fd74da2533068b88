"""Values and gradients of a `keras.ops` function on the active backend.

`value_and_grad(fn, *inputs, compiled=False)` runs `fn` on the inputs and
returns NumPy arrays: the value and the gradient of ``sum(value)`` with
respect to every floating-point input (integer inputs, such as labels, are
passed through and get ``None``).

| backend    | eager                    | compiled                                |
|------------|--------------------------|-----------------------------------------|
| tensorflow | `tf.GradientTape`        | `tf.function(jit_compile=True)` (XLA)   |
| jax        | `jax.vjp`                | `jax.jit` around `jax.vjp`              |
| torch      | autograd                 | not available: raises ValueError        |

Compiled functions are cached per `(fn, static kwargs)`, so calling again
with the same input shapes does not recompile.
"""

import functools

import keras
import numpy as np
from keras import backend

__all__ = [
    "COMPILED_BACKENDS",
    "device_types",
    "list_devices",
    "to_numpy",
    "value_and_grad",
]

COMPILED_BACKENDS = ("tensorflow", "jax")


def _is_float(dtype):
    return backend.standardize_dtype(dtype).startswith(("float", "bfloat"))


def to_numpy(x):
    """A backend tensor as a NumPy array (bfloat16 via `ml_dtypes`)."""
    if x is None:
        return None
    if backend.backend() == "tensorflow" and hasattr(x, "numpy"):
        # keras' conversion fails on 0-d bfloat16 TensorFlow tensors.
        return np.asarray(x.numpy())
    return keras.ops.convert_to_numpy(x)


def all_finite(x):
    """Whether every entry of a tensor (any backend, any float dtype) is
    finite: no NaN, no inf.

    Example:
        >>> import numpy as np
        >>> from safeloss.testing import all_finite
        >>> all_finite(np.array([1.0, 0.0])), all_finite(np.array([1.0, np.nan]))
        (True, False)
    """
    return bool(np.all(np.isfinite(to_numpy(x).astype(np.float64))))


def _freeze(kwargs):
    return tuple(sorted(kwargs.items()))


def value_and_grad(fn, *inputs, compiled=False, **kwargs):
    """Evaluates `fn(*inputs, **kwargs)` and its gradient.

    Args:
        fn: a function of backend tensors returning one tensor.
        *inputs: NumPy arrays (or scalars); floating ones are differentiated.
        compiled: run under XLA (TensorFlow) or `jax.jit` (JAX).
        **kwargs: hashable static arguments passed to `fn`.

    Returns:
        ``(value, grads)``: NumPy arrays; `grads` has one entry per input,
        ``None`` for non-floating inputs. The gradient is that of the sum of
        the value's entries.
    """
    name = backend.backend()
    if compiled and name not in COMPILED_BACKENDS:
        raise ValueError(
            f"`compiled=True` needs one of {COMPILED_BACKENDS}; the active "
            f"backend is {name!r}."
        )
    arrays = [np.asarray(x) for x in inputs]
    wrt = tuple(i for i, x in enumerate(arrays) if _is_float(x.dtype))
    runner = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}[name]
    value, grads = runner(fn, arrays, wrt, compiled, _freeze(kwargs))
    full = [None] * len(arrays)
    for i, g in zip(wrt, grads):
        full[i] = to_numpy(g)
    return to_numpy(value), full


def _tensorflow(fn, arrays, wrt, compiled, kwargs):
    import tensorflow as tf

    tensors = [tf.convert_to_tensor(x) for x in arrays]
    step = _tf_step(fn, wrt, compiled, kwargs)
    return step(*tensors)


@functools.lru_cache(maxsize=None)
def _tf_step(fn, wrt, compiled, kwargs):
    import tensorflow as tf

    def step(*tensors):
        with tf.GradientTape() as tape:
            for i in wrt:
                tape.watch(tensors[i])
            value = fn(*tensors, **dict(kwargs))
        grads = tape.gradient(
            value,
            [tensors[i] for i in wrt],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return value, grads

    return tf.function(step, jit_compile=True) if compiled else step


def _jax(fn, arrays, wrt, compiled, kwargs):
    import jax.numpy as jnp

    tensors = [jnp.asarray(x) for x in arrays]
    return _jax_step(fn, wrt, compiled, kwargs)(*tensors)


@functools.lru_cache(maxsize=None)
def _jax_step(fn, wrt, compiled, kwargs):
    import jax
    import jax.numpy as jnp

    def step(*tensors):
        def of_floats(*floats):
            full = list(tensors)
            for i, x in zip(wrt, floats):
                full[i] = x
            return fn(*full, **dict(kwargs))

        value, vjp = jax.vjp(of_floats, *[tensors[i] for i in wrt])
        return value, vjp(jnp.ones_like(value))

    return jax.jit(step) if compiled else step


def _torch(fn, arrays, wrt, compiled, kwargs):
    import torch

    tensors = []
    for i, x in enumerate(arrays):
        t = keras.ops.convert_to_tensor(x)
        if i in wrt:
            t = t.detach().requires_grad_(True)
        tensors.append(t)
    value = fn(*tensors, **dict(kwargs))
    float_inputs = [tensors[i] for i in wrt]
    grads = [None] * len(float_inputs)
    if value.requires_grad:
        grads = torch.autograd.grad(
            value,
            float_inputs,
            grad_outputs=torch.ones_like(value),
            allow_unused=True,
        )
    grads = [
        torch.zeros_like(x) if g is None else g
        for x, g in zip(float_inputs, grads)
    ]
    return value.detach(), grads


def list_devices():
    """The devices the active backend sees, as Keras device names.

    For example ``["cpu:0"]`` here, ``["cpu:0", "cpu:1"]`` with two logical
    CPUs configured, ``["cpu:0", "gpu:0"]`` on a GPU machine.
    """
    name = backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return [
            f"{d.device_type.lower()}:{d.name.rsplit(':', 1)[-1]}"
            for d in tf.config.list_logical_devices()
        ]
    if name == "jax":
        import jax

        found = []
        for platform in ("cpu", "gpu", "tpu"):
            try:
                found += [f"{platform}:{d.id}" for d in jax.devices(platform)]
            except RuntimeError:
                continue
        return found
    import torch

    found = ["cpu:0"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return found


def device_types():
    """One device per device type, for example ``["cpu:0", "gpu:0"]``."""
    first = {}
    for device in list_devices():
        first.setdefault(device.split(":")[0], device)
    return list(first.values())
