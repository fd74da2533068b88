"""The `global_batch` option: count-normalised losses over all replicas.

Under `tf.distribute.MirroredStrategy` Keras runs `train_step` once per
replica on that replica's slice of the batch. A per-sample loss is exact
there: Keras sums the per-replica losses, each divided by the replica count
(`_scale_for_distribution`), and sums the gradients. A loss that mines
triplets or normalises by a count of valid pairs is not: each replica only
sees its own rows, so it mines fewer triplets and divides by its own count.

With ``global_batch=True`` each replica gathers `y_true`, `y_pred` and
`sample_weight` from every replica (`ReplicaContext.all_gather` along the
batch axis) and computes the loss of the global batch. Why that gives the
single-device step, with L the global loss and R replicas:

* Value: each replica returns ``L / R`` (the usual pre-division); Keras sums
  the replicas, so it sees L.
* Gradient: the gradient of `all_gather` sums the incoming gradients of all
  replicas and hands each one the slice of its own rows. Each replica's
  ``d(L / R) / d(gathered rows)`` summed over R replicas is ``dL / d rows``,
  so every replica back-propagates the exact gradient of L with respect to
  its own rows into the shared weights, and Keras' all-reduce SUM of the
  weight gradients adds the replicas' disjoint contributions: ``dL / dW``,
  counted once.

With ``reduction="none"`` each replica returns the values of its own rows
(computed with mining over the global batch): concatenated in replica order
they are the single-device values.

Without a strategy, with one replica, in a cross-replica context, and on
the JAX and PyTorch backends the option changes nothing: under
`keras.distribution.DataParallel` JAX already computes the loss on the
global (sharded) batch, and Keras has no multi-device training for PyTorch.
"""

import functools

from keras import backend
from keras import ops

__all__ = ["gathers_global_batch", "replica_context_to_gather"]


def replica_context_to_gather():
    """The TensorFlow replica context to gather over, or None.

    None unless the backend is TensorFlow and the caller runs inside
    `strategy.run` (as `fit` does) of a strategy with more than one replica.
    """
    if backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync < 2:
        return None
    return context


def gathers_global_batch(loss_call):
    """Decorates a loss class' `__call__` to honour its `global_batch` option.

    The class sets ``self.global_batch``; when it is True and
    `replica_context_to_gather` finds a replica context, `loss_call` runs on
    the gathered batch (see the module docstring), else on its arguments.
    """

    @functools.wraps(loss_call)
    def call_on_global_batch(self, y_true, y_pred, sample_weight=None):
        context = replica_context_to_gather() if self.global_batch else None
        if context is None:
            return loss_call(self, y_true, y_pred, sample_weight)
        y_true, y_pred, sample_weight = (
            None if value is None else ops.convert_to_tensor(value)
            for value in (y_true, y_pred, sample_weight)
        )
        local_rows = ops.shape(y_pred)[0]
        y_true, y_pred, sample_weight = _gather_batch(
            context, (y_true, y_pred, sample_weight)
        )
        loss = loss_call(self, y_true, y_pred, sample_weight)
        if self.reduction in ("none", None):
            return _own_rows(context, loss, local_rows)
        return loss

    return call_on_global_batch


def _gather_batch(context, tensors):
    """Each tensor's rows from every replica; None and scalars as they are.

    A scalar (a `sample_weight` of 1.0, say) is the same on every replica.
    """
    import tensorflow as tf

    def batched(tensor):
        return tensor is not None and len(tensor.shape) > 0

    # One all_gather per tensor: the labels and weights carry no gradient,
    # and only the embeddings' gather must sum gradients on the way back.
    gathered = [
        context.all_gather(t, axis=0) if batched(t) else t for t in tensors
    ]
    # `all_gather` keeps the static shape for some dtypes and loses it for
    # others, and the losses check static shapes (rank, views, matching
    # batch sizes): restore the local trailing dimensions, and give every
    # gathered tensor the batch size that one of them knows.
    rows = next(
        (t.shape[0] for t in gathered if batched(t) and t.shape[0] is not None),
        None,
    )
    return [
        tf.ensure_shape(t, [rows] + list(local.shape[1:])) if batched(t) else t
        for local, t in zip(tensors, gathered)
    ]


def _own_rows(context, values, local_rows):
    """This replica's rows of `values` computed over the gathered batch."""
    import tensorflow as tf

    # Replicas may hold different numbers of rows (the last, short batch).
    rows_per_replica = context.all_gather(tf.reshape(local_rows, [1]), axis=0)
    start = tf.reduce_sum(rows_per_replica[: context.replica_id_in_sync_group])
    return values[start : start + local_rows]
