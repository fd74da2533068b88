"""Layers that replace `Lambda` layers computing losses and distances.

A `Lambda` layer makes a saved model unloadable in Keras' safe mode
("Requested the deserialization of a Python lambda"), and the hand-written
math inside it is usually the textbook formula that NaNs at zero distance.
These layers are registered for serialization, compute in float32 under the
``mixed_float16`` and ``mixed_bfloat16`` policies (their dtype policy is
float32 unless given), and use the safe primitives.

Typical siamese model, trained with `fit(x)` and no targets::

    encoder = keras.Sequential([...])
    a, p, n = (keras.Input((dim,)) for _ in range(3))
    per_sample = safeloss.layers.TripletLossLayer(margin=1.0)(
        [encoder(a), encoder(p), encoder(n)])
    model = keras.Model([a, p, n], per_sample)
    model.compile(optimizer="adam", loss=safeloss.IdentityLoss())
    model.fit([xa, xp, xn], epochs=...)

The alternative without a loss on the output: a layer that calls
``self.add_loss(keras.ops.mean(per_sample))`` and a model compiled with no
loss, trained with `fit(x)`; it works on the three backends, but
`IdentityLoss` keeps the loss visible in the model's outputs and metrics.
"""

import keras
from keras import ops

from safeloss import ops as safe_ops
from safeloss.distances import check_distance, paired_distances
from safeloss.losses._contrastive import contrastive_loss
from safeloss.losses._triplet import triplet_loss

__all__ = [
    "ContrastiveLossLayer",
    "Distance",
    "L2Normalize",
    "TripletLossLayer",
]


class _Float32Layer(keras.layers.Layer):
    """A layer whose dtype policy defaults to float32, also under mixed
    precision: distances and losses of float16 embeddings overflow."""

    def __init__(self, dtype=None, **kwargs):
        super().__init__(dtype=dtype or "float32", **kwargs)


def _check_inputs(inputs, count, layer):
    if not isinstance(inputs, (list, tuple)) or len(inputs) != count:
        raise ValueError(
            f"{layer} expects a list of {count} tensors, received "
            f"{type(inputs).__name__} of length "
            f"{len(inputs) if isinstance(inputs, (list, tuple)) else 'n/a'}."
        )
    shapes = [tuple(x.shape) for x in inputs]
    if len(set(shapes)) != 1:
        raise ValueError(
            f"{layer} expects inputs of one shape (batch, dim), received {shapes}."
        )


@keras.saving.register_keras_serializable(package="safeloss")
class TripletLossLayer(_Float32Layer):
    """Per-sample triplet loss of ``[anchor, positive, negative]``.

    Returns ``safeloss.triplet_loss`` with shape (batch, 1), the drop-in for
    a `Lambda` layer computing the loss by hand; compile the model with
    `safeloss.IdentityLoss`.

    Args:
        margin: the margin of the hinge (or of the soft margin).
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.
        soft: use ``softplus(d_ap - d_an + margin)`` instead of the hinge.

    Example:
        >>> import numpy as np
        >>> from safeloss import layers
        >>> a = np.array([[0.0, 0.0]], "float32")
        >>> n = np.array([[0.3, 0.4]], "float32")
        >>> np.asarray(layers.TripletLossLayer(margin=1.0)([a, a, n]))  # 0 - 0.5 + 1
        array([[0.5]], dtype=float32)
    """

    def __init__(self, margin=1.0, distance="euclidean", soft=False, **kwargs):
        super().__init__(**kwargs)
        check_distance(distance)
        self.margin = margin
        self.distance = distance
        self.soft = soft

    def call(self, inputs):
        _check_inputs(inputs, 3, "TripletLossLayer")
        anchor, positive, negative = inputs
        loss = triplet_loss(
            anchor,
            positive,
            negative,
            margin=self.margin,
            distance=self.distance,
            soft=self.soft,
        )
        return ops.expand_dims(loss, -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(margin=self.margin, distance=self.distance, soft=self.soft)
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class ContrastiveLossLayer(_Float32Layer):
    """Per-sample contrastive loss of ``[first, second, y_true]``.

    ``y_true`` is 1 for similar pairs and 0 for dissimilar ones, shape
    (batch,) or (batch, 1). Returns ``safeloss.contrastive_loss`` of the
    pair's safe distance with shape (batch, 1).

    Args:
        margin: dissimilar pairs closer than this are penalised.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.

    Example:
        >>> import numpy as np
        >>> from safeloss import layers
        >>> first = np.array([[0.0, 0.0], [0.0, 0.0]], "float32")
        >>> second = np.array([[0.0, 0.0], [0.3, 0.4]], "float32")
        >>> same = np.array([[1.0], [0.0]], "float32")
        >>> np.asarray(layers.ContrastiveLossLayer(margin=1.0)([first, second, same]))
        array([[0.  ],
               [0.25]], dtype=float32)
    """

    def __init__(self, margin=1.0, distance="euclidean", **kwargs):
        super().__init__(**kwargs)
        check_distance(distance)
        self.margin = margin
        self.distance = distance

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 3:
            raise ValueError(
                "ContrastiveLossLayer expects [first, second, y_true]."
            )
        first, second, y_true = inputs
        _check_inputs([first, second], 2, "ContrastiveLossLayer")
        pairs = ops.stack([first, second], axis=1)
        y_true = ops.reshape(ops.cast(y_true, self.compute_dtype), (-1,))
        loss = contrastive_loss(
            y_true, pairs, margin=self.margin, distance=self.distance
        )
        return ops.expand_dims(loss, -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(margin=self.margin, distance=self.distance)
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class Distance(_Float32Layer):
    """Distance between two inputs, row by row: shape (batch, 1).

    The drop-in for the Keras siamese examples'
    ``Lambda(euclidean_distance)``; finite gradient at distance 0 and no
    overflow for large embeddings (`safeloss.paired_distances`).

    Args:
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"``.

    Example:
        >>> import numpy as np
        >>> from safeloss import layers
        >>> a = np.array([[0.0, 0.0], [1.0, 1.0]], "float32")
        >>> b = np.array([[3.0, 4.0], [1.0, 1.0]], "float32")
        >>> np.asarray(layers.Distance()([a, b]))
        array([[5.],
               [0.]], dtype=float32)
    """

    def __init__(self, distance="euclidean", **kwargs):
        super().__init__(**kwargs)
        check_distance(distance)
        self.distance = distance

    def call(self, inputs):
        _check_inputs(inputs, 2, "Distance")
        first, second = inputs
        return ops.expand_dims(
            paired_distances(first, second, distance=self.distance), -1
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(distance=self.distance)
        return config


@keras.saving.register_keras_serializable(package="safeloss")
class L2Normalize(_Float32Layer):
    """``x / ||x||`` along `axis`; zero vectors stay zero (no NaN, no epsilon
    bias), via `safeloss.ops.l2_normalize`.

    Args:
        axis: the axis to normalise.

    Example:
        >>> import numpy as np
        >>> from safeloss import layers
        >>> x = np.array([[3.0, 4.0], [0.0, 0.0]], "float32")
        >>> np.round(np.asarray(layers.L2Normalize()(x)), 4)
        array([[0.6, 0.8],
               [0. , 0. ]], dtype=float32)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return safe_ops.l2_normalize(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis)
        return config
