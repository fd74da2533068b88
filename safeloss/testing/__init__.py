"""Test harness shared by the safeloss tests and `python -m safeloss audit`.

* `strategies`: hypothesis strategies for extreme inputs (needs hypothesis).
* `tolerances`: the per-dtype tolerance table.
* `autodiff`: values and gradients on the active backend, eager or compiled.
"""

from safeloss.testing.autodiff import (
    COMPILED_BACKENDS,
    all_finite,
    device_types,
    list_devices,
    to_numpy,
    value_and_grad,
)

__all__ = [
    "COMPILED_BACKENDS",
    "all_finite",
    "device_types",
    "list_devices",
    "to_numpy",
    "value_and_grad",
]
