"""`safeloss.get`: a loss instance from a name or a serialized config."""

import re

import keras

__all__ = ["get"]


def _snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z][a-z])|(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _public_losses():
    import safeloss

    classes = {}
    for name in safeloss.__all__:
        value = getattr(safeloss, name)
        if isinstance(value, type) and issubclass(value, keras.losses.Loss):
            classes[name] = value
            classes[_snake_case(name)] = value
    return classes


def get(identifier):
    """A safeloss loss instance from its name or its serialized form.

    Keras 3.15's `compile(loss="...")` cannot resolve registered names, so
    this is the way to pick a loss by name (from a configuration file, say);
    pass the instance to `compile`.

    Args:
        identifier: a class name (``"TripletLoss"``) or its snake-case form
            (``"triplet_loss"``), built with default arguments; a dict made
            by `keras.losses.serialize`; or a loss instance (returned as is).

    Returns:
        A `keras.losses.Loss`.

    Raises:
        ValueError: the name is not a safeloss loss (the message lists them)
            or the identifier has another type.

    Example:

    >>> import safeloss
    >>> type(safeloss.get("triplet_loss")).__name__
    'TripletLoss'
    """
    if isinstance(identifier, keras.losses.Loss):
        return identifier
    if isinstance(identifier, dict):
        return keras.losses.deserialize(identifier)
    if isinstance(identifier, str):
        classes = _public_losses()
        if identifier not in classes:
            names = sorted(name for name in classes if not name[0].isupper())
            raise ValueError(
                f"Unknown safeloss loss {identifier!r}: expected one of "
                f"{names} (or their class names)."
            )
        return classes[identifier]()
    raise ValueError(
        "`identifier` must be a loss name, a serialized loss dict or a loss "
        f"instance, received {type(identifier).__name__}."
    )
