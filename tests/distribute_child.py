"""One `fit` step per loss on one device and on two; prints JSON.

Run by `tests/test_distribute.py` in a fresh process, because the two
logical CPU devices must be configured before TensorFlow or JAX starts:
``KERAS_BACKEND=tensorflow python -m tests.distribute_child`` (two logical
CPUs, `tf.distribute.MirroredStrategy`) or ``KERAS_BACKEND=jax
XLA_FLAGS=--xla_force_host_platform_device_count=2 python -m
tests.distribute_child`` (`keras.distribution.DataParallel`).

For every case it prints the largest weight difference between the
single-device and the two-device step, the size of the step itself (so a
difference can be read against it) and both reported losses. On TensorFlow it
also prints, per mined loss with ``reduction="none"``, the largest
difference between the per-row values of the two replicas, concatenated, and
the single-device values.
"""

import json
import os
import sys

BATCH = 16
FEATURES = 4
DIM = 8
CLASSES = 4


def _configure_devices():
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )


_configure_devices()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import safeloss  # noqa: E402


def _data():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, CLASSES, BATCH).astype(np.int32)
    return {
        "x": rng.standard_normal((BATCH, FEATURES)).astype(np.float32),
        "labels": labels,
        "one_hot": np.eye(CLASSES, dtype=np.float32)[labels],
        "binary": (labels % 2).astype(np.float32)[:, None],
        "none": np.zeros(BATCH, np.float32),
        # Weights that differ per row, so a replica using the wrong rows' weights shows.
        "weights": rng.uniform(0.5, 1.5, BATCH).astype(np.float32),
    }


# name -> (loss factory, per-sample output shape, key of y in _data()).
PER_SAMPLE = {
    "TripletLoss": (lambda: safeloss.TripletLoss(), (3, DIM), "none"),
    "ContrastiveLoss": (lambda: safeloss.ContrastiveLoss(), (2, DIM), "binary"),
    "IdentityLoss": (lambda: safeloss.IdentityLoss(), (1,), "none"),
    "BinaryCrossentropy": (
        lambda: safeloss.BinaryCrossentropy(from_logits=True), (1,), "binary"),
    "BinaryFocalCrossentropy": (
        lambda: safeloss.BinaryFocalCrossentropy(from_logits=True), (1,), "binary"),
    "CategoricalCrossentropy": (
        lambda: safeloss.CategoricalCrossentropy(from_logits=True), (CLASSES,), "one_hot"),
    "CategoricalFocalCrossentropy": (
        lambda: safeloss.CategoricalFocalCrossentropy(from_logits=True),
        (CLASSES,), "one_hot"),
    "SparseCategoricalCrossentropy": (
        lambda: safeloss.SparseCategoricalCrossentropy(from_logits=True),
        (CLASSES,), "labels"),
}


def _count_normalised(global_batch, classes=None):
    def make(cls, **options):
        return lambda **kwargs: cls(global_batch=global_batch, **options, **kwargs)

    cases = {
        "TripletLoss(batch_all)": (
            make(safeloss.TripletLoss, mining="batch_all"), (DIM,), "labels"),
        "TripletSemiHardLoss": (make(safeloss.TripletSemiHardLoss), (DIM,), "labels"),
        "TripletHardLoss": (make(safeloss.TripletHardLoss), (DIM,), "labels"),
        "NTXentLoss": (make(safeloss.NTXentLoss), (2, DIM), "none"),
        "SupConLoss": (make(safeloss.SupConLoss), (DIM,), "labels"),
    }
    return {name: case for name, case in cases.items() if classes is None or name in classes}


# Every case of the report, grouped: one model with a head per case, so one
# traced `fit` step covers them all.
GROUPS = {
    "per_sample": PER_SAMPLE,
    "global_batch": _count_normalised(True),
    # The default, for two losses: evidence that the comparison can fail.
    "per_replica": _count_normalised(False, ("TripletSemiHardLoss", "SupConLoss")),
}


def _model(cases):
    """One Dense head per loss on a shared input: the heads share no weight,
    so each head's step depends on its own loss only."""
    inputs = keras.Input((FEATURES,))
    outputs = {
        head: keras.layers.Reshape(shape, name=head)(
            keras.layers.Dense(int(np.prod(shape)), name=f"{head}_dense")(inputs)
        )
        for head, (_, shape, _) in cases.items()
    }
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    model.set_weights(
        [rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    )
    return model


def _one_step(cases, data, run_eagerly):
    """Per head: (kernel and bias after one step, the reported loss)."""
    model = _model(cases)
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss={head: make_loss() for head, (make_loss, _, _) in cases.items()},
        run_eagerly=run_eagerly,
    )
    targets = {head: data[target] for head, (_, _, target) in cases.items()}
    history = model.fit(
        data["x"], targets, sample_weight=data["weights"],
        batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
    )
    return {
        head: (
            [np.asarray(w) for w in model.get_layer(f"{head}_dense").weights],
            float(history.history[f"{head}_loss"][0]),
        )
        for head in cases
    }


def _compare(data, scope):
    cases = {
        (group, name): case for group, members in GROUPS.items()
        for name, case in members.items()
    }
    heads = {f"head{i}": case for i, case in enumerate(cases.values())}
    # On one device TensorFlow runs eagerly (no graph to trace); eager JAX
    # would compile every op separately, slower than one jit.
    single = _one_step(heads, data, run_eagerly=keras.backend.backend() == "tensorflow")
    with scope():
        multi = _one_step(heads, data, run_eagerly=False)
    initial = _model(heads)
    results = {group: {} for group in GROUPS}
    for (group, name), head in zip(cases, heads):
        (single_weights, single_loss), (multi_weights, multi_loss) = single[head], multi[head]
        start = [np.asarray(w) for w in initial.get_layer(f"{head}_dense").weights]
        results[group][name] = {
            "weight_difference": max(
                float(np.max(np.abs(a - b))) for a, b in zip(single_weights, multi_weights)
            ),
            "step": max(
                float(np.max(np.abs(a - b))) for a, b in zip(single_weights, start)
            ),
            "single_loss": single_loss,
            "multi_loss": multi_loss,
        }
    return results


def _per_row_differences(strategy, data):
    """Losses with reduction="none": replica rows against one device."""
    import tensorflow as tf

    rng = np.random.default_rng(5)
    halves = BATCH // 2
    cases = _count_normalised(True, ("TripletLoss(batch_all)", "SupConLoss"))
    losses = {name: make_loss(reduction="none") for name, (make_loss, _, _) in cases.items()}
    inputs = {
        name: (data[target], rng.standard_normal((BATCH,) + shape).astype(np.float32))
        for name, (_, shape, target) in cases.items()
    }
    expected = {
        name: np.asarray(loss(*inputs[name], data["weights"]))
        for name, loss in losses.items()
    }

    def replica_inputs(context):
        replica = context.replica_id_in_sync_group
        rows = slice(replica * halves, (replica + 1) * halves)
        return (
            {name: (y_true[rows], y_pred[rows]) for name, (y_true, y_pred) in inputs.items()},
            data["weights"][rows],
        )

    def all_losses(replica_inputs, weights):
        return {
            name: loss(*replica_inputs[name], weights) for name, loss in losses.items()
        }

    def on_replicas(distributed):
        return strategy.run(all_losses, args=distributed)

    per_replica = on_replicas(
        strategy.experimental_distribute_values_from_function(replica_inputs)
    )
    differences = {}
    for name in losses:
        got = np.concatenate(
            [np.asarray(v) for v in strategy.experimental_local_results(per_replica[name])]
        )
        differences[name] = float(np.max(np.abs(got - expected[name])))
    return differences


def main():
    data = _data()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        scope = strategy.scope
        replicas = strategy.num_replicas_in_sync
    elif backend == "jax":
        import jax

        distribution = keras.distribution.DataParallel(devices=jax.devices())
        scope = distribution.scope
        replicas = len(jax.devices())
    else:
        raise SystemExit(f"no multi-device training in Keras for {backend}")
    report = {"replicas": replicas, **_compare(data, scope)}
    if backend == "tensorflow":
        report["none_reduction"] = _per_row_differences(strategy, data)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
