"""Data model of the benchmark runner and step helpers for suites.

Imported by `run.py` (the parent) and by suite modules, so nothing here may
import keras or a backend at module level: the parent never picks a backend,
and each child sets `KERAS_BACKEND` before its first keras import.
"""

import dataclasses
from typing import Callable

BACKENDS = ("tensorflow", "jax", "torch")
MODES = ("eager", "compiled")


@dataclasses.dataclass(frozen=True)
class Config:
    """One table block: every contender timed side by side in one process.

    `contenders[0]` is the baseline that ratios are taken against. Configs
    sharing a `series` are one curve in increasing size: a contender that
    fails in one (an error, a timeout, the memory cap) is not run in the
    later ones of its series, which would only fail again, slower.
    `max_warmup` and `max_repeats` cap the warm-up and timed calls of a
    config whose single call takes tens of seconds, so that it fits the
    runner's time cap.
    """

    suite: str
    backend: str
    mode: str
    params: dict
    contenders: tuple
    series: str = None
    max_warmup: int = None
    max_repeats: int = None

    def calls(self, warmup, repeats):
        """(warm-up calls, timed calls), given the runner's."""
        def capped(calls, cap):
            return calls if cap is None else min(calls, cap)

        return (capped(warmup, self.max_warmup),
                capped(repeats, self.max_repeats))


@dataclasses.dataclass(frozen=True)
class Suite:
    """A named set of configurations.

    The module defining `SUITE` must also define
    `build(contender, backend, mode, params) -> step`, run inside the child:
    `step()` runs one call and returns only once its results are computed.
    """

    name: str
    make_configs: Callable[[bool], list]

    def configs(self, quick):
        return self.make_configs(quick)


def configs_for(suite, params, contenders, backends=BACKENDS, modes=MODES,
                peers=None, **caps):
    """Configs for every backend x mode, without torch "compiled".

    Compiled means XLA (`tf.function(jit_compile=True)`, `jax.jit`); torch has
    no XLA path here, so that pair is simply not generated. `peers` maps a
    backend to the contenders that run only there (optax on JAX, PyTorch's
    own losses), appended after `contenders`.
    """
    peers = peers or {}
    return [
        Config(suite, backend, mode, dict(params),
               tuple(contenders) + tuple(peers.get(backend, ())), **caps)
        for backend in backends
        for mode in modes
        if not (backend == "torch" and mode == "compiled")
    ]


def not_run(kind):
    """The status of a contender skipped because it failed earlier in its
    series with `kind` ("timeout", "error", "over memory cap")."""
    return f"not run: {kind} at a smaller size"


def note_failures(failed, series, statuses):
    """Records in `failed` ({series: {contender: kind}}) the first failure of
    each contender in `statuses` ({contender: status}) of a config."""
    if series is None:
        return
    for name, status in statuses.items():
        if status != "ok" and not status.startswith("not run"):
            failed.setdefault(series, {}).setdefault(name, status.split(":")[0])


def value_and_grad_step(fn, inputs, backend, mode):
    """A step computing `sum(fn(*inputs))` and its gradient w.r.t. all inputs.

    `inputs` are numpy arrays; they are converted to backend tensors once,
    here, so conversion is not timed. The tensors are passed as arguments
    (not closed over) so XLA cannot constant-fold the computation away.
    """
    import keras

    xs = [keras.ops.convert_to_tensor(x) for x in inputs]
    if backend == "tensorflow":
        return _tf_step(fn, xs, mode)
    if backend == "jax":
        return _jax_step(fn, xs, mode)
    if backend == "torch":
        return _torch_step(fn, xs, mode)
    raise ValueError(f"unknown backend {backend!r}")


def _tf_step(fn, xs, mode):
    import tensorflow as tf

    def value_and_grad(*xs):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            loss = tf.reduce_sum(fn(*xs))
        return loss, tape.gradient(loss, xs)

    if mode == "compiled":
        value_and_grad = tf.function(value_and_grad, jit_compile=True)

    def step():
        value_and_grad(*xs)
        # Waits for queued device work without copying the gradients to host.
        tf.test.experimental.sync_devices()

    return step


def _jax_step(fn, xs, mode):
    import jax
    import jax.numpy as jnp

    value_and_grad = jax.value_and_grad(
        lambda *xs: jnp.sum(fn(*xs)), argnums=tuple(range(len(xs)))
    )
    if mode == "compiled":
        value_and_grad = jax.jit(value_and_grad)
    return lambda: jax.block_until_ready(value_and_grad(*xs))


def _torch_step(fn, xs, mode):
    import torch

    if mode != "eager":
        raise ValueError("torch has eager mode only")
    xs = [x.requires_grad_() for x in xs]

    def step():
        loss = fn(*xs).sum()
        # autograd.grad rather than backward(): nothing accumulates in .grad.
        torch.autograd.grad(loss, xs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return step
