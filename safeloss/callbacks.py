"""Callbacks that keep a training run from ending with non-finite weights.

`NonFiniteGuard` checks every training batch and, on the first non-finite
value, puts the model back to its last finite state, so that a NaN in one
batch can no longer cost the hours of training before it.
"""

import collections
import os

import keras
import ml_dtypes
import numpy as np

__all__ = ["NonFiniteEvent", "NonFiniteGuard"]

NonFiniteEvent = collections.namedtuple(
    "NonFiniteEvent",
    [
        "epoch",
        "batch",
        "reason",
        "first_bad_layer",
        "first_bad_variable",
        "batch_loss",
        "restored_epoch",
        "restored_batch",
    ],
)
NonFiniteEvent.__doc__ = """One detection by `NonFiniteGuard`.

Fields:
    epoch, batch: 0-based indices of the batch whose update was found
        non-finite (as Keras passes them to callbacks).
    reason: ``"loss"`` (the batch's loss), ``"weights"`` (a model weight) or
        ``"optimizer"`` (an optimizer variable, e.g. an Adam moment): the
        first of these, in this order, that was non-finite.
    first_bad_layer: name of the first layer, in ``model.layers`` order, with
        a non-finite weight after the update (the model's own name for a
        weight no layer owns); None when every weight stayed finite.
    first_bad_variable: path of that weight, e.g. ``"sequential/dense/kernel"``.
    batch_loss: the batch's own loss (see `NonFiniteGuard`), or None.
    restored_epoch, restored_batch: the batch after which the restored
        snapshot was taken; both None for the state before training began.
"""

_BEFORE_TRAINING = -1  # stands for "no epoch/batch yet" inside a .npz file


class NonFiniteGuard(keras.callbacks.Callback):
    """Restores the last finite weights and optimizer state on a NaN or inf.

    After every training batch the guard checks the batch's own loss, every
    model weight and every optimizer variable for finiteness. On the first
    non-finite value it assigns back the latest snapshot of the model
    weights, the optimizer variables (step counter and moments included) and
    the metric variables, records a `NonFiniteEvent`, prints a report and, by
    default, stops training. With ``stop_training=False`` it goes on with the
    next batch from the restored state instead, so the bad batch (and any
    batch since the snapshot) is skipped.

    Why the optimizer too: once a gradient is NaN, Adam's moments are NaN, and
    weights restored alone are poisoned again by the next updates. Why the
    batch's own loss: Keras' ``logs["loss"]`` is the running mean of the
    epoch, NaN for the rest of the epoch after one NaN batch. The guard
    recovers the batch's loss from the change of the loss tracker's running
    total and count, ``(total_k - total_{k-1}) / (count_k - count_{k-1})``:
    Keras weights each batch by its size, so this is exact, up to the float32
    rounding of the running total, for a smaller last batch too. Since the
    metric variables are restored with the weights, the running values are
    finite again after a restore and later bad batches are still detected.
    A custom ``train_step`` that does not update the loss tracker gets
    ``batch_loss = None``; ``logs["loss"]`` and the weights are checked.

    Epoch loss after a restore: the ``loss`` (and every compiled metric) that
    Keras reports for that epoch, in the History and at the end of the
    progress bar, is the mean over the batches whose updates were kept. If
    the snapshot was taken in an earlier epoch (or before training), the
    metrics are reset: should training stop before another batch of the epoch
    is kept, Keras reports 0 for it, the mean of no batch. The progress bar's
    line for the bad batch itself still shows the non-finite running value.

    Cost: each check copies the weights and the optimizer variables from the
    device to host memory once (about three times the size of the weights
    with Adam) and scans them with numpy; on JAX it also writes the compiled
    step's state back into the model variables (`jax_state_sync`) after
    every batch. A snapshot keeps those host arrays (and the metric
    variables), so the memory mode holds one such copy at all times, and
    ``checkpoint_path`` writes it to disk instead, every time it is taken;
    ``every_n_batches`` takes it less often, and a restore then goes back to
    the latest snapshot, losing the finite batches since. The first snapshot
    is taken when training begins, so a NaN in the first batch is undone
    too; on TensorFlow this builds the optimizer's variables one step
    earlier than Keras would. With ``stop_training=False`` a run whose every
    batch is non-finite restores after each of them to the end.

    Args:
        stop_training: True (default) stops training after a restore; False
            continues with the next batch from the restored state.
        every_n_batches: positive int; a snapshot is taken after every
            ``every_n_batches``-th finite batch (counted across epochs).
        checkpoint_path: None (default) keeps the snapshot in memory; a path
            writes each snapshot there as a numpy ``.npz`` file (replaced
            atomically, the name used as given) and reads it back to restore.
            The file is left in place after training.
        verbose: 1 (default) prints a report on each detection; 0 is silent.

    Attributes:
        events: list of `NonFiniteEvent`, one per detection, cleared when
            training begins.
        triggered: whether any detection happened.
        epoch: the first event's `epoch` (None before one); `batch`,
            `reason`, `first_bad_layer`, `first_bad_variable` and
            `batch_loss` are its other fields, likewise.
        last_batch_loss: the latest batch's own loss (None before the first
            batch or when the loss tracker was not updated).

    Example:
        A NaN in the second sample makes the second batch's update NaN; the
        guard restores the weights from before it and stops:

        >>> import keras, numpy as np, safeloss
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x = np.array([[1.0], [np.nan], [2.0]], "float32")
        >>> guard = safeloss.NonFiniteGuard(verbose=0)
        >>> _ = model.fit(x, np.zeros((3, 1)), batch_size=1, verbose=0,
        ...               shuffle=False, callbacks=[guard])
        >>> guard.triggered, guard.epoch, guard.batch, guard.reason
        (True, 0, 1, 'loss')
        >>> all(bool(np.isfinite(w).all()) for w in model.get_weights())
        True
    """

    def __init__(
        self,
        stop_training=True,
        every_n_batches=1,
        checkpoint_path=None,
        verbose=1,
    ):
        super().__init__()
        if (
            isinstance(every_n_batches, bool)
            or not isinstance(every_n_batches, int)
            or every_n_batches < 1
        ):
            raise ValueError(
                "every_n_batches: expected a positive int, "
                f"got {every_n_batches!r}"
            )
        self.stop_training = bool(stop_training)
        self.every_n_batches = every_n_batches
        self.checkpoint_path = (
            None if checkpoint_path is None else os.fspath(checkpoint_path)
        )
        self.verbose = verbose
        self.events = []
        self.last_batch_loss = None
        self._snapshot = None
        self._since_snapshot = 0
        self._seen_tracker = (0.0, 0.0)
        self._epoch = None

    @property
    def triggered(self):
        return bool(self.events)

    def _first(self, field):
        return getattr(self.events[0], field) if self.events else None

    epoch = property(lambda self: self._first("epoch"))
    batch = property(lambda self: self._first("batch"))
    reason = property(lambda self: self._first("reason"))
    first_bad_layer = property(lambda self: self._first("first_bad_layer"))
    first_bad_variable = property(
        lambda self: self._first("first_bad_variable")
    )
    batch_loss = property(lambda self: self._first("batch_loss"))

    def on_train_begin(self, logs=None):
        self.events = []
        self.last_batch_loss = None
        self._snapshot = None
        self._epoch = None
        self._sync()
        optimizer = self.model.optimizer
        # TensorFlow creates the moments inside the first compiled step; the
        # snapshot must hold the variables a restore will assign.
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self._store(
            self._take_snapshot(
                None,
                None,
                _to_numpy(self.model.weights),
                _to_numpy(optimizer.variables),
            )
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        # Keras resets the metrics just before this call.
        self._seen_tracker = (0.0, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        self._sync()
        self.last_batch_loss = self._batch_loss()
        running = (logs or {}).get("loss")
        weights = _to_numpy(self.model.weights)
        optimizer = _to_numpy(self.model.optimizer.variables)
        if not _all_finite([self.last_batch_loss, running]):
            reason = "loss"
        elif not _all_finite(weights):
            reason = "weights"
        elif not _all_finite(optimizer):
            reason = "optimizer"
        else:
            self._since_snapshot += 1
            if self._since_snapshot >= self.every_n_batches:
                self._store(
                    self._take_snapshot(self._epoch, batch, weights, optimizer)
                )
            return
        self._restore_after(batch, reason, weights)

    def _restore_after(self, batch, reason, weights):
        layer, variable = self._first_bad_weight(weights)
        snapshot = self._load()
        _assign(self.model.weights, snapshot["weights"], "model weights")
        _assign(
            self.model.optimizer.variables,
            snapshot["optimizer"],
            "optimizer variables",
        )
        if snapshot["epoch"] == self._epoch:
            _assign(
                self.model.metrics_variables,
                snapshot["metrics"],
                "metric variables",
            )
        else:
            self.model.reset_metrics()
        self._seen_tracker = self._read_loss_tracker() or (0.0, 0.0)
        self._since_snapshot = 0
        event = NonFiniteEvent(
            epoch=self._epoch,
            batch=batch,
            reason=reason,
            first_bad_layer=layer,
            first_bad_variable=variable,
            batch_loss=self.last_batch_loss,
            restored_epoch=snapshot["epoch"],
            restored_batch=snapshot["batch"],
        )
        self.events.append(event)
        if self.stop_training:
            self.model.stop_training = True
        if self.verbose:
            print(_report(event, self.stop_training), flush=True)

    def _sync(self):
        # JAX keeps the compiled step's state outside the model variables
        # between batches; write it back so they can be read and assigned
        # (the next step then reads them again).
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()

    def _loss_tracker(self):
        for metric in self.model.metrics:
            if metric.name == "loss" and isinstance(
                metric, keras.metrics.Mean
            ):
                return metric
        return None

    def _read_loss_tracker(self):
        tracker = self._loss_tracker()
        if tracker is None:
            return None
        total, count = _to_numpy([tracker.total, tracker.count])
        return float(total), float(count)

    def _batch_loss(self):
        current = self._read_loss_tracker()
        if current is None:
            return None
        (total, count), (seen_total, seen_count) = current, self._seen_tracker
        self._seen_tracker = current
        if count == seen_count:
            return None
        return (total - seen_total) / (count - seen_count)

    def _first_bad_weight(self, weights):
        bad = {
            id(variable)
            for variable, value in zip(self.model.weights, weights)
            if not _all_finite([value])
        }
        if not bad:
            return None, None
        for layer in self.model.layers:
            for variable in layer.weights:
                if id(variable) in bad:
                    return layer.name, variable.path
        variable = next(v for v in self.model.weights if id(v) in bad)
        return self.model.name, variable.path

    def _take_snapshot(self, epoch, batch, weights, optimizer):
        return {
            "epoch": epoch,
            "batch": batch,
            "weights": weights,
            "optimizer": optimizer,
            "metrics": _to_numpy(self.model.metrics_variables),
        }

    def _store(self, snapshot):
        self._since_snapshot = 0
        if self.checkpoint_path is None:
            self._snapshot = snapshot
        else:
            _save_npz(self.checkpoint_path, snapshot)

    def _load(self):
        if self.checkpoint_path is None:
            return self._snapshot
        return _load_npz(self.checkpoint_path)


def _to_numpy(variables):
    # `convert_to_numpy` copies (`np.array`) on every backend, so the arrays
    # read for a check can serve as the snapshot: the next update, in place
    # on PyTorch, cannot reach them.
    return [keras.ops.convert_to_numpy(v.value) for v in variables]


def _all_finite(values):
    for value in values:
        if value is None:
            continue
        array = np.asarray(value)
        # Integer and boolean variables (step counters, seeds) are finite.
        if array.dtype.kind in "fcV" and not np.isfinite(array).all():
            return False
    return True


def _assign(variables, arrays, what):
    variables = list(variables)
    if len(variables) != len(arrays):
        raise ValueError(
            f"NonFiniteGuard: cannot restore the {what}: the snapshot holds "
            f"{len(arrays)} arrays, the model has {len(variables)} variables "
            "(was the model or its optimizer changed during training?)"
        )
    for variable, array in zip(variables, arrays):
        variable.assign(array)


def _report(event, stopping):
    where = f"epoch {event.epoch}, batch {event.batch} (0-based)"
    if event.restored_epoch is None:
        restored = "the state before training"
    else:
        restored = (
            f"the state after epoch {event.restored_epoch}, "
            f"batch {event.restored_batch}"
        )
    lines = [f"NonFiniteGuard: non-finite {event.reason} at {where}."]
    if event.batch_loss is not None:
        lines.append(f"  Batch loss: {event.batch_loss}.")
    if event.first_bad_layer is not None:
        lines.append(
            f"  First non-finite weights: layer {event.first_bad_layer!r} "
            f"({event.first_bad_variable})."
        )
    then = "stopping training" if stopping else "continuing"
    lines.append(
        f"  Restored the weights, optimizer and metric variables of "
        f"{restored}; {then}."
    )
    return "\n".join(lines)


def _save_npz(path, snapshot):
    arrays = {
        "epoch": np.array(_none_to_int(snapshot["epoch"])),
        "batch": np.array(_none_to_int(snapshot["batch"])),
    }
    for group in ("weights", "optimizer", "metrics"):
        arrays[f"{group}_count"] = np.array(len(snapshot[group]))
        for index, array in enumerate(snapshot[group]):
            key = f"{group}_{index}"
            # numpy's format cannot describe ml_dtypes (bfloat16, float8):
            # store the bits and the dtype name.
            if array.dtype.kind == "V":
                arrays[f"{key}_dtype"] = np.array(array.dtype.name)
                array = array.view(f"u{array.dtype.itemsize}")
            arrays[key] = array
    # A crash mid-write must not destroy the previous snapshot.
    partial = path + ".partial"
    with open(partial, "wb") as file:
        np.savez(file, **arrays)
    os.replace(partial, path)


def _load_npz(path):
    with np.load(path, allow_pickle=False) as data:
        snapshot = {
            "epoch": _int_to_none(data["epoch"]),
            "batch": _int_to_none(data["batch"]),
        }
        for group in ("weights", "optimizer", "metrics"):
            arrays = []
            for index in range(int(data[f"{group}_count"])):
                key = f"{group}_{index}"
                array = data[key]
                if f"{key}_dtype" in data:
                    name = str(data[f"{key}_dtype"])
                    array = array.view(getattr(ml_dtypes, name))
                arrays.append(array)
            snapshot[group] = arrays
    return snapshot


def _none_to_int(value):
    return _BEFORE_TRAINING if value is None else value


def _int_to_none(array):
    value = int(array)
    return None if value == _BEFORE_TRAINING else value
