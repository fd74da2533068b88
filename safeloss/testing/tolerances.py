"""One tolerance table for every comparison against a float64 reference.

Inputs are rounded to the tested dtype before the reference sees them, so a
tolerance covers only the error of the computation and of rounding its
result. float16 and bfloat16 are computed in float32 inside safeloss, so
their error is mostly the final rounding: a few units of their round-off.
"""

import numpy as np

from safeloss.ops import finfo

__all__ = [
    "TOLERANCES",
    "assert_allclose",
    "assert_gram_close",
    "unit_roundoff",
]

# rtol: relative error; atol: absolute floor, for results near 0.
TOLERANCES = {
    "float16": {"rtol": 4e-3, "atol": 1e-3},
    "bfloat16": {"rtol": 3e-2, "atol": 1e-2},
    "float32": {"rtol": 2e-5, "atol": 1e-6},
    "float64": {"rtol": 1e-12, "atol": 1e-14},
}


def unit_roundoff(dtype):
    """Half the machine epsilon: the relative error of one rounding."""
    return float(finfo(dtype).eps) / 2


def assert_allclose(actual, expected, dtype, scale=1.0, err_msg=""):
    """Asserts `actual` (in `dtype`) is within the table's tolerance.

    Checks the dtype too. `scale` widens both tolerances for computations
    whose error grows with their size (a sum over many terms).
    """
    actual = np.asarray(actual)
    assert str(actual.dtype) == dtype, (
        f"{err_msg} dtype: expected {dtype}, got {actual.dtype}"
    )
    tol = TOLERANCES[dtype]
    np.testing.assert_allclose(
        actual.astype(np.float64),
        np.asarray(expected, np.float64),
        rtol=tol["rtol"] * scale,
        atol=tol["atol"] * scale,
        err_msg=err_msg,
    )


def assert_gram_close(squared, reference_squared, norms_squared, dtype,
                      dim, compute_dtype=None, floor=None, err_msg=""):
    """Asserts squared distances from a Gram matrix are within its error.

    A Gram matrix computes ``d**2 = ||a||**2 + ||b||**2 - 2 a.b``; the
    cancellation leaves an absolute error of about ``u * (||a||**2 +
    ||b||**2)`` whatever ``d`` is, so near-duplicate rows have a large
    relative error (9% at d = 1e-3 in float32). The bound used is

        |d**2 - ref**2| <= c * u_c * (||a||**2 + ||b||**2)
                           + 4 * u_out * ref**2 + tiny_out

    with ``u_c`` the round-off of the dtype the product ran in, ``u_out``
    that of the output dtype (its final rounding), ``c = 4 + 2 dim`` (a dot
    product of length dim accumulates up to dim roundings), and the output's
    smallest normal as a floor for results that underflow.

    Args:
        squared: the squared distances to check, float64 array.
        reference_squared: float64 reference.
        norms_squared: ``||a||**2 + ||b||**2`` per entry, float64.
        dtype: the output dtype.
        dim: the embedding dimension.
        compute_dtype: the dtype of the Gram product (default: float32 for
            float16/bfloat16, else `dtype`).
        floor: the absolute floor (default: the output's smallest normal;
            pass it rescaled when the arrays are rescaled).
    """
    if compute_dtype is None:
        compute_dtype = "float32" if dtype in ("float16", "bfloat16") else dtype
    if floor is None:
        floor = float(finfo(dtype).tiny)
    bound = (
        (4 + 2 * dim) * unit_roundoff(compute_dtype) * norms_squared
        + 4 * unit_roundoff(dtype) * reference_squared
        + floor
    )
    assert np.all(np.isfinite(squared)) and np.all(np.isfinite(bound)), (
        f"{err_msg} non-finite comparison: {squared!r} against bound {bound!r}"
    )
    excess = np.abs(squared - reference_squared) - bound
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else None
    assert not np.any(excess > 0), (
        f"{err_msg} Gram error beyond bound at {worst}: "
        f"got {squared[worst]!r}, reference {reference_squared[worst]!r}, "
        f"bound {bound[worst]!r}"
    )
