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


def _count_normalised(global_batch):
    def make(cls, **options):
        return lambda **kwargs: cls(global_batch=global_batch, **options, **kwargs)

    return {
        "TripletLoss(batch_all)": (
            make(safeloss.TripletLoss, mining="batch_all"), (DIM,), "labels"),
        "TripletLoss(batch_hard)": (
            make(safeloss.TripletLoss, mining="batch_hard"), (DIM,), "labels"),
        "TripletLoss(semi_hard)": (
            make(safeloss.TripletLoss, mining="semi_hard"), (DIM,), "labels"),
        "TripletSemiHardLoss": (make(safeloss.TripletSemiHardLoss), (DIM,), "labels"),
        "TripletHardLoss": (make(safeloss.TripletHardLoss), (DIM,), "labels"),
        "NTXentLoss": (make(safeloss.NTXentLoss), (2, DIM), "none"),
        "SupConLoss": (make(safeloss.SupConLoss), (DIM,), "labels"),
    }


def _model(shape):
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(int(np.prod(shape))),
            keras.layers.Reshape(shape),
        ]
    )
    rng = np.random.default_rng(3)
    model.set_weights(
        [rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    )
    return model


def _one_step(case, data):
    make_loss, shape, target = case
    model = _model(shape)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=make_loss())
    before = model.get_weights()
    history = model.fit(
        data["x"], data[target], sample_weight=data["weights"],
        batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
    )
    after = model.get_weights()
    step = max(float(np.max(np.abs(a - b))) for a, b in zip(after, before))
    return after, step, float(history.history["loss"][0])


def _compare(cases, data, scope):
    results = {}
    for name, case in cases.items():
        single, step, single_loss = _one_step(case, data)
        with scope():
            multi, _, multi_loss = _one_step(case, data)
        results[name] = {
            "weight_difference": max(
                float(np.max(np.abs(a - b))) for a, b in zip(single, multi)
            ),
            "step": step,
            "single_loss": single_loss,
            "multi_loss": multi_loss,
        }
    return results


def _per_row_differences(strategy, data):
    """Losses with reduction="none": replica rows against one device."""
    import tensorflow as tf

    rng = np.random.default_rng(5)
    halves = BATCH // 2
    differences = {}
    for name, (make_loss, shape, target) in _count_normalised(True).items():
        loss = make_loss(reduction="none")
        y_pred = rng.standard_normal((BATCH,) + shape).astype(np.float32)
        expected = np.asarray(loss(data[target], y_pred, data["weights"]))

        def replica_inputs(context):
            rows = slice(
                context.replica_id_in_sync_group * halves,
                (context.replica_id_in_sync_group + 1) * halves,
            )
            return data[target][rows], y_pred[rows], data["weights"][rows]

        @tf.function
        def on_replicas(inputs):
            return strategy.run(loss, args=inputs)

        per_replica = on_replicas(
            strategy.experimental_distribute_values_from_function(replica_inputs)
        )
        got = np.concatenate(
            [np.asarray(v) for v in strategy.experimental_local_results(per_replica)]
        )
        differences[name] = float(np.max(np.abs(got - expected)))
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
    report = {
        "replicas": replicas,
        "per_sample": _compare(PER_SAMPLE, data, scope),
        "global_batch": _compare(_count_normalised(True), data, scope),
        "per_replica": _compare(_count_normalised(False), data, scope),
    }
    if backend == "tensorflow":
        report["none_reduction"] = _per_row_differences(strategy, data)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
