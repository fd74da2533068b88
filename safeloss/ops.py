"""Safe numerical primitives on `keras.ops`.

Every loss in safeloss is built from these functions. Each one keeps its value
and its gradient finite where the textbook formula does not, and says in its
docstring which input breaks the textbook formula and how the guard works.

Conventions shared by every primitive:

* The result has the input's dtype. float16 and bfloat16 are computed in
  float32 inside and cast back at the end, saturating at the dtype's largest
  finite value rather than overflowing to inf.
* "Tiny" means the dtype's smallest *normal* number. TensorFlow and JAX flush
  subnormals to zero on CPU and GPUs do the same, so a guard at 0 would let a
  subnormal through on one device and not on another: guards sit at tiny.
* Guards use the double-`where` pattern: the unsafe operation never sees a
  bad input, even on the branch that is discarded, because the reverse pass
  multiplies the discarded branch's gradient by zero, and ``0 * inf`` is NaN
  (JAX FAQ, "Gradients contain NaN where using where").
* Only ops that keep float64 on every backend are used (Keras 3.15 returns
  float32 for float64 inputs from `maximum`, `minimum`, `matmul`, `norm` and
  `logaddexp` on PyTorch or JAX): `where`, `einsum`, `clip`, `max`, `sum`.
"""

import ml_dtypes
import numpy as np
from keras import backend
from keras import ops

__all__ = [
    "clamp",
    "clip_logits",
    "compute_dtype",
    "dtype_name",
    "finfo",
    "largest",
    "l2_normalize",
    "logit_bound",
    "logsumexp",
    "mean",
    "safe_divide",
    "safe_log",
    "safe_norm",
    "safe_sqrt",
    "saturating_cast",
    "saturating_multiply",
    "scale_by_max_abs",
    "softplus",
    "tiny",
]

_LOW_PRECISION = ("float16", "bfloat16")


def finfo(dtype):
    """`numpy.finfo` for a Keras dtype name, bfloat16 included.

    Example:
        >>> from safeloss import ops
        >>> float(ops.finfo("bfloat16").max)
        3.3895313892515355e+38
    """
    dtype = backend.standardize_dtype(dtype)
    if dtype == "bfloat16":
        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(np.dtype(dtype))


def tiny(dtype):
    """The dtype's smallest normal number, as a Python float.

    Example:
        >>> from safeloss import ops
        >>> ops.tiny("float16")
        6.103515625e-05
    """
    return float(finfo(dtype).tiny)


def largest(dtype):
    """The dtype's largest finite number, as a Python float.

    Example:
        >>> from safeloss import ops
        >>> ops.largest("float16")
        65504.0
    """
    return float(finfo(dtype).max)


def compute_dtype(dtype):
    """The dtype safeloss computes in for inputs of `dtype`.

    float16 and bfloat16 are promoted to float32: their 5 and 8 exponent-bit
    ranges overflow on squares and `exp` of ordinary values.

    Example:
        >>> from safeloss import ops
        >>> ops.compute_dtype("float16"), ops.compute_dtype("float64")
        ('float32', 'float64')
    """
    dtype = backend.standardize_dtype(dtype)
    return "float32" if dtype in _LOW_PRECISION else dtype


def dtype_name(x):
    """The Keras name of a tensor's dtype (``"float32"``, ``"bfloat16"``...).

    Example:
        >>> import keras
        >>> from safeloss import ops
        >>> ops.dtype_name(keras.ops.ones((2,), "bfloat16"))
        'bfloat16'
    """
    return backend.standardize_dtype(x.dtype)


def _to_compute(x):
    """Returns `(x in its compute dtype, the original dtype)`."""
    x = ops.convert_to_tensor(x)
    dtype = dtype_name(x)
    if not dtype.startswith(("float", "bfloat")):
        raise ValueError(
            f"Expected a floating-point tensor, received dtype={dtype}."
        )
    return ops.cast(x, compute_dtype(dtype)), dtype


def clamp(x, lower, upper):
    """`x` limited to `[lower, upper]` with `where`, keeping the dtype.

    `ops.clip` would do the same, but it is far slower under `jax.jit` in
    front of reductions, and `ops.minimum`/`ops.maximum` turn float64 into
    float32 on PyTorch. The gradient is 1 inside the interval, 0 outside.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> x = np.array([-2.0, 0.5, 3.0], "float32")
        >>> np.asarray(ops.clamp(x, 0.0, 1.0))
        array([0. , 0.5, 1. ], dtype=float32)
    """
    dtype = dtype_name(x)
    # convert_to_tensor with a dtype, not cast: TensorFlow casts a Python
    # float through float32, which rejects float64's largest values.
    x = ops.where(x > upper, ops.convert_to_tensor(upper, dtype), x)
    return ops.where(x < lower, ops.convert_to_tensor(lower, dtype), x)


def saturating_cast(x, dtype):
    """Casts `x` to `dtype`, mapping values beyond its range to +-max.

    The gradient is 0 where a value saturates, and never NaN.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> x = np.array([1e6, -1e6, 2.5], "float32")
        >>> np.asarray(ops.saturating_cast(x, "float16")).tolist()
        [65504.0, -65504.0, 2.5]
    """
    big = largest(dtype)
    return ops.cast(clamp(x, -big, big), dtype)


def saturating_multiply(scale, factor, dtype):
    """``scale * factor`` for non-negative operands, saturating at the
    largest value of `dtype` instead of overflowing.

    `factor` is replaced by 0 wherever the product would overflow, so inf
    appears in neither pass: backends differentiate through an inf product
    in ways that can produce ``0 * inf = NaN``. The gradient is 0 where the
    product saturates.

    Example:
        >>> import keras, numpy as np
        >>> from safeloss import ops
        >>> scale = keras.ops.convert_to_tensor([2.0, 1e30], "float32")
        >>> factor = keras.ops.convert_to_tensor([3.0, 1e10], "float32")
        >>> np.asarray(ops.saturating_multiply(scale, factor, "float32")).tolist()
        [6.0, 3.4028234663852886e+38]
    """
    big = largest(dtype)
    overflow = factor > big / scale
    product = scale * ops.where(overflow, ops.zeros_like(factor), factor)
    return ops.where(overflow, ops.convert_to_tensor(big, dtype_name(product)), product)


def safe_sqrt(x):
    """Square root with a finite gradient everywhere.

    Math: ``sqrt(x)`` for ``x >= tiny`` (the dtype's smallest normal number),
    0 below it.

    Guard: values below tiny, including 0 and negative round-off, are
    replaced by 1 before the root and the result by 0 after it (double
    `where`). Adding an epsilon, ``sqrt(x + eps)``, would bias every value.

    Gradient: ``1 / (2 sqrt(x))`` is at most ``1 / (2 sqrt(tiny))`` above the
    threshold (64 in float16, 4.6e18 in float32) and 0 below it, never the
    infinite slope of `sqrt` at 0 that turns ``0 * inf`` into NaN.

    Args:
        x: a floating-point tensor.

    Returns:
        A tensor of the same shape and dtype.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> np.asarray(ops.safe_sqrt(np.array([0.0, 4.0], "float32")))
        array([0., 2.], dtype=float32)
    """
    x, dtype = _to_compute(x)
    ok = x >= tiny(dtype)
    root = ops.sqrt(ops.where(ok, x, ops.ones_like(x)))
    return ops.cast(ops.where(ok, root, ops.zeros_like(x)), dtype)


def safe_log(x):
    """Natural logarithm that is finite with a finite gradient everywhere.

    Math: ``log(x)`` for ``x >= tiny``; ``log(tiny)`` below it (-9.70 in
    float16, -87.3 in float32 and bfloat16, -708.4 in float64).

    Guard: values below tiny (0, subnormals, negatives) are replaced by tiny
    before the logarithm, with a zero gradient there.

    Gradient: ``1 / x`` is at most ``1 / tiny`` (16384 in float16, 8.5e37 in
    float32), finite in every dtype.

    Args:
        x: a floating-point tensor.

    Returns:
        A tensor of the same shape and dtype.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> np.round(np.asarray(ops.safe_log(np.array([0.0, 1.0], "float32"))), 4)
        array([-87.3366,   0.    ], dtype=float32)
    """
    x, dtype = _to_compute(x)
    floor = tiny(dtype)
    safe_x = ops.where(x >= floor, x, ops.convert_to_tensor(floor, dtype_name(x)))
    return ops.cast(ops.log(safe_x), dtype)


def safe_divide(numerator, denominator):
    """Division that never returns inf or NaN for finite inputs.

    Math: ``a / b`` where ``|b| >= tiny``; 0 where ``|b| < tiny`` (as
    `divide_no_nan`, extended to subnormal denominators); ``sign(a b) * max``
    where the quotient would overflow the dtype.

    Guard: the denominator is replaced by 1 (and the numerator by 0) wherever
    the quotient is not computed, so neither pass divides by zero.

    Gradient: ``1 / b`` and ``-a / b**2`` where the quotient is computed, 0
    where it is 0 or saturated. The second is unbounded near ``b = 0``; it is
    evaluated as ``-(a / b) / b`` and saturates at the dtype's largest value
    rather than overflowing (``b * b`` underflowing to 0 would make the
    textbook form 0 / 0 = NaN).

    Args:
        numerator: a floating-point tensor.
        denominator: a tensor broadcastable against `numerator`.

    Returns:
        The broadcast quotient, in the numerator's dtype.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> a = np.array([1.0, 1.0, 1e30], "float32")
        >>> b = np.array([4.0, 0.0, 1e-30], "float32")
        >>> np.asarray(ops.safe_divide(a, b)).tolist()
        [0.25, 0.0, 3.4028234663852886e+38]
    """
    a, dtype = _to_compute(numerator)
    b = ops.cast(ops.convert_to_tensor(denominator), a.dtype)
    abs_b = ops.abs(b)
    # |a| >= max * |b| is exactly "the quotient overflows"; max * |b| itself
    # may overflow to inf, which only makes the comparison false, as it should.
    saturated = ops.abs(a) >= abs_b * largest(dtype)
    defined = abs_b >= tiny(dtype)
    computed = ops.logical_and(defined, ops.logical_not(saturated))
    a_safe = ops.where(computed, a, ops.zeros_like(a))
    b_safe = ops.where(computed, b, ops.ones_like(b))
    # The derivative in b is supplied as -q / b, clamped: backends evaluate
    # the textbook -a / (b * b), where b * b underflows to 0 for small b and
    # a flushed-to-zero numerator then makes 0 / 0.
    # Divisors beyond 1 / tiny have a subnormal reciprocal, which XLA on CPU
    # may use and flush to 0: divide a quarter by a quarter there instead.
    huge = abs_b > 1.0 / tiny(dtype_name(a))
    quarter = ops.where(huge, 0.25, 1.0)
    a_safe = a_safe * ops.cast(quarter, a.dtype)
    b_safe = b_safe * ops.cast(quarter, a.dtype)
    b_fixed = ops.stop_gradient(b_safe)
    quotient = a_safe / b_fixed
    slope = ops.stop_gradient(saturating_cast(-quotient / b_fixed, dtype_name(a)))
    quotient = quotient + (b_safe - b_fixed) * slope
    limit = ops.sign(a) * ops.sign(b) * largest(dtype)
    quotient = ops.where(
        ops.logical_and(defined, saturated), limit, quotient
    )
    return saturating_cast(quotient, dtype)


def scale_by_max_abs(x, axis, tiny):
    """Divides `x` by its largest magnitude along `axis`.

    Returns ``(x / s, s, nonzero)`` with ``s = max|x|`` under `stop_gradient`
    (kept with length 1 on `axis`), `nonzero` where ``s >= tiny``, and ``s``
    replaced by 1 elsewhere so the division is always defined. Every entry of
    ``x / s`` lies in ``[-4, 4]`` with the largest at least 1 in magnitude:
    its squares neither overflow nor, for the largest entry, underflow.

    `s` is capped at ``1 / tiny`` (``2**126`` in float32), a quarter of the
    dtype's range: XLA on CPU may divide by multiplying with the reciprocal,
    and the reciprocal of a larger `s` is subnormal, flushed to zero, which
    turned ``x / s`` into 0 and the gradient into NaN (seen on JAX).

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> x = np.array([[2.0, -8.0], [0.0, 0.0]], "float32")
        >>> scaled, scale, nonzero = ops.scale_by_max_abs(x, -1, ops.tiny("float32"))
        >>> np.asarray(scaled).tolist(), np.asarray(nonzero).tolist()
        ([[0.25, -1.0], [0.0, 0.0]], [[True], [False]])
    """
    work_dtype = dtype_name(x)
    cap = 1.0 / float(finfo(work_dtype).tiny)
    scale = ops.stop_gradient(ops.max(ops.abs(x), axis=axis, keepdims=True))
    nonzero = scale >= tiny
    scale = ops.where(nonzero, scale, ops.ones_like(scale))
    scale = ops.where(scale > cap, ops.convert_to_tensor(cap, work_dtype), scale)
    return x / scale, scale, nonzero


def _unit_sum_of_squares(scaled, nonzero, axis):
    """Sum of squares of a max-scaled vector: in ``[1, n]``, or 1 if zero."""
    sum_sq = ops.sum(ops.square(scaled), axis=axis, keepdims=True)
    return ops.where(nonzero, sum_sq, ops.ones_like(sum_sq))


def safe_norm(x, axis=-1, keepdims=False):
    """Euclidean norm that neither overflows nor underflows, safe at 0.

    Math: ``||x|| = s * sqrt(sum((x / s)**2))`` with ``s = max|x|`` along
    `axis`, as BLAS `nrm2` does; 0 for vectors whose entries are all below
    tiny.

    Guard: scaling by the largest magnitude keeps every square in ``[0, 16]``,
    so no square overflows (the textbook form is inf above about 1.8e19 in
    float32 and 256 in float16) and the largest does not underflow (the
    textbook form loses the gradient below about 1e-19 in float32). A zero
    vector takes the `where` branch with ``s = 1``. Norms above the dtype's
    range (only possible within ``sqrt(n)`` of the largest value) saturate
    at max, and so do vectors with an infinite entry (such as the
    difference of two finite vectors that overflowed), with a zero gradient.

    Gradient: ``x / ||x||``, at most 1 in magnitude for every input; 0 at the
    zero vector (a subgradient) and where the norm saturates. It is written
    by hand (`keras.ops.custom_gradient`) and multiplied into the cotangent
    directly: autodiff through the scaling multiplies the cotangent by ``s``
    first, which overflows for large cotangents (the gradient of a squared
    norm near the dtype's limit) although the result is finite.

    Args:
        x: a floating-point tensor.
        axis: the axis to reduce.
        keepdims: keep the reduced axis with length 1.

    Returns:
        A tensor of the input's dtype without `axis` (or with length 1 there).

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> x = np.array([[3e30, 4e30], [0.0, 0.0]], "float32")  # squares overflow
        >>> np.asarray(ops.safe_norm(x))
        array([5.e+30, 0.e+00], dtype=float32)
    """
    x, dtype = _to_compute(x)

    @ops.custom_gradient
    def norm_keepdims(v):
        small = tiny(dtype)
        work_dtype = dtype_name(v)
        cap = 1.0 / float(finfo(work_dtype).tiny)
        scale = ops.stop_gradient(ops.max(ops.abs(v), axis=axis, keepdims=True))
        nonzero = scale >= small
        scale = ops.where(nonzero, scale, ops.ones_like(scale))
        scale = ops.where(scale > cap, ops.convert_to_tensor(cap, work_dtype), scale)
        # One division per vector, then multiplications: dividing every entry
        # costs more than the rest of the norm. The cap keeps the reciprocal
        # normal.
        inverse = 1.0 / scale
        root = ops.sqrt(_unit_sum_of_squares(v * inverse, nonzero, axis))
        norm = saturating_multiply(scale, root, dtype)
        norm = ops.where(nonzero, norm, ops.zeros_like(norm))

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            # x / ||x|| = (x * (1/s)) * (1/root): the first factor is at most
            # 4 per entry, the second at most 1, and the cotangent goes into
            # the per-vector factor (autodiff would multiply the cotangent by
            # s or 1/s first, which overflows for large cotangents).
            # The `where` is on the product, not on the factor: a saturated
            # vector may hold an inf entry, and inf * 0 is NaN.
            moving = ops.logical_and(nonzero, norm < largest(dtype))
            factor = ops.cast(upstream, work_dtype) / root
            return ops.where(moving, (v * inverse) * factor, ops.zeros_like(v))

        return norm, grad

    norm = norm_keepdims(x)
    if not keepdims:
        norm = ops.squeeze(norm, axis=axis)
    return saturating_cast(norm, dtype)


def l2_normalize(x, axis=-1, dtype=None):
    """``x / ||x||`` along `axis`; the zero vector maps to the zero vector.

    Math: each entry divided by `safe_norm`; entries below tiny count as 0,
    so vectors whose entries are all below tiny map to 0 (Keras' `normalize`
    adds an epsilon instead, which biases short vectors).

    Guard: the vector is first divided by its largest magnitude, so the
    division by the norm is by a number in ``[1, sqrt(n)]``: no overflow, no
    underflow, and no division by zero.

    Gradient: ``(I - u u^T) / ||x||``, finite for every input (at most
    ``1 / tiny``); 0 at the zero vector.

    Args:
        x: a floating-point tensor.
        axis: the axis along which to normalise.
        dtype: the output dtype; defaults to the input's. Pass the compute
            dtype (``compute_dtype(x.dtype)``) to keep float32 precision for
            low-precision inputs; the zero threshold stays the input's.

    Returns:
        A tensor of the same shape, in `dtype`.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> x = np.array([[3.0, 4.0], [0.0, 0.0]], "float32")
        >>> np.round(np.asarray(ops.l2_normalize(x)), 4)
        array([[0.6, 0.8],
               [0. , 0. ]], dtype=float32)
    """
    x, input_dtype = _to_compute(x)
    # Entries below tiny count as 0, as on devices that flush subnormals:
    # otherwise a short vector's direction differs between PyTorch on CPU
    # (which keeps subnormals) and the other backends. Subtracting a stopped
    # copy keeps the gradient of every entry, exact zeros included (a
    # `where` would cut it, and the direction does depend on them).
    below_tiny = ops.abs(x) < tiny(input_dtype)
    x = x - ops.stop_gradient(ops.where(below_tiny, x, ops.zeros_like(x)))
    scaled, _, nonzero = scale_by_max_abs(x, axis, tiny(input_dtype))
    sum_sq = _unit_sum_of_squares(scaled, nonzero, axis)
    unit = ops.where(nonzero, scaled / ops.sqrt(sum_sq), ops.zeros_like(x))
    return ops.cast(unit, dtype or input_dtype)


def softplus(x):
    """``log(1 + exp(x))``, exact for every finite `x` in every dtype.

    Math: ``x + log1p(exp(-x))`` for ``x > 0`` and ``log1p(exp(x))`` otherwise;
    both are exact rearrangements, and `exp` only ever sees a non-positive
    argument.

    Guard: each branch is fed a clamped copy of `x` (double `where`), so the
    discarded branch cannot overflow either: the textbook form is inf above
    88.7 in float32 (11.1 in float16) and its gradient NaN there.

    Gradient: ``sigmoid(x)``, in ``[0, 1]``.

    Low precision is computed in float32 and cast back: the output has the
    input's dtype (`keras.ops.logaddexp(x, 0.0)` returns float32 for float16
    input, and float32 for float64 on JAX and PyTorch).

    Args:
        x: a floating-point tensor.

    Returns:
        A tensor of the same shape and dtype.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> np.round(np.asarray(ops.softplus(np.array([-20.0, 0.0, 100.0], "float32"))), 4)
        array([  0.    ,   0.6931, 100.    ], dtype=float32)
        >>> np.asarray(ops.softplus(np.array([12.0], "float16")))  # exp(12) > 65504
        array([12.], dtype=float16)
    """
    x, dtype = _to_compute(x)
    zero = ops.zeros_like(x)
    positive = x > 0
    x_pos = ops.where(positive, x, zero)
    x_neg = ops.where(positive, zero, x)
    value = ops.where(
        positive,
        x_pos + ops.log1p(ops.exp(-x_pos)),
        ops.log1p(ops.exp(x_neg)),
    )
    return saturating_cast(value, dtype)


def mean(x, axis=-1, keepdims=False):
    """Arithmetic mean along `axis` (an int or a tuple of ints).

    Math: ``sum(x * (1 / n))`` with ``n`` the number of entries averaged.

    Guard: Keras 3.15's `ops.mean` computes float64 in float32 on JAX and
    PyTorch, so a float64 mean of 1e307 becomes inf there; a sum keeps the
    dtype on every backend. Scaling each entry before the sum keeps the
    result finite whenever every entry is. The gradient is ``1 / n`` per
    entry.

    Example:
        >>> import keras
        >>> from safeloss import ops
        >>> float(ops.mean(keras.ops.convert_to_tensor([1e307, 1e307], "float64")))
        1e+307
    """
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    count = 1
    for a in axes:
        count = count * ops.shape(x)[a]
    dtype = dtype_name(x)
    inverse = ops.cast(1.0 / ops.cast(count, "float64"), dtype)
    return ops.sum(x * inverse, axis=axis, keepdims=keepdims)


def logsumexp(x, axis=-1, mask=None, keepdims=False):
    """``log(sum(exp(x)))`` along `axis`, over the entries where `mask` holds.

    Math: ``m + log(sum(exp(x - m)))`` with ``m`` the row's largest unmasked
    entry. A row with no unmasked finite entry (fully masked, or all -inf)
    returns 0 with a zero gradient, where the JAX and PyTorch built-ins give
    -inf and a NaN gradient.

    Guard: `m` is under `stop_gradient` (the result does not depend on it);
    masked entries are replaced by `m` before the subtraction, so a masked
    huge value cannot overflow ``x - m`` even on the discarded branch. The sum
    is at least 1 on every row that has an entry, so its logarithm is safe.

    Gradient: the softmax over the unmasked entries, in ``[0, 1]``; 0 on
    masked entries and on empty rows.

    Args:
        x: a floating-point tensor.
        axis: the axis to reduce.
        mask: optional boolean tensor broadcastable to `x`; False entries are
            left out.
        keepdims: keep the reduced axis with length 1.

    Returns:
        A tensor of the input's dtype without `axis`.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> x = np.array([[10.0, 10.0], [5.0, 7.0]], "float32")
        >>> mask = np.array([[True, True], [False, False]])
        >>> np.round(np.asarray(ops.logsumexp(x, mask=mask)), 4)  # 10 + log 2; empty row
        array([10.6931,  0.    ], dtype=float32)
    """
    x, dtype = _to_compute(x)
    valid = x > float("-inf")
    if mask is not None:
        valid = ops.logical_and(valid, ops.convert_to_tensor(mask, "bool"))
    lowest = ops.convert_to_tensor(-largest(dtype_name(x)), dtype_name(x))
    # The max is taken from a stopped copy so that an eager gradient tape does
    # not keep another tensor of x's size for it.
    row_max = ops.max(
        ops.where(valid, ops.stop_gradient(x), lowest), axis=axis, keepdims=True
    )
    has_entry = ops.any(valid, axis=axis, keepdims=True)
    row_max = ops.where(has_entry, row_max, ops.zeros_like(row_max))
    shifted = ops.where(valid, x, row_max) - row_max
    terms = ops.where(valid, ops.exp(shifted), ops.zeros_like(x))
    total = ops.sum(terms, axis=axis, keepdims=True)
    total = ops.where(has_entry, total, ops.ones_like(total))
    result = ops.where(has_entry, ops.log(total) + row_max, ops.zeros_like(total))
    if not keepdims:
        result = ops.squeeze(result, axis=axis)
    return saturating_cast(result, dtype)


def logit_bound(dtype):
    """The largest logit magnitude `clip_logits` lets through for `dtype`.

    A quarter of the dtype's largest value: differences of two clipped
    logits stay finite, and every logit up to a tenth of the largest value,
    the range safeloss promises to handle exactly, passes unchanged.

    Example:
        >>> from safeloss import ops
        >>> ops.logit_bound("float16")
        16376.0
    """
    return largest(dtype) / 4


def clip_logits(x):
    """Logits limited to ``[-B, B]`` with ``B = logit_bound(dtype)``.

    Math: ``clamp(x, -B, B)``; B is 16376 in float16, 8.5e37 in float32 and
    bfloat16, 4.5e307 in float64.

    Guard: +-inf become +-B, so a max-shifted softmax sees ``inf - inf``
    nowhere: a +inf logit on the true class gives a loss of 0 and -inf
    masking logits with zero labels give no NaN.

    Gradient: 1 inside the bound, 0 outside it (a clipped logit no longer
    moves the loss).

    Args:
        x: a floating-point tensor.

    Returns:
        A tensor of the same shape and dtype.

    Example:
        >>> import numpy as np
        >>> from safeloss import ops
        >>> x = np.array([-np.inf, 1.0, np.inf], "float16")
        >>> np.asarray(ops.clip_logits(x)).tolist()
        [-16376.0, 1.0, 16376.0]
    """
    x = ops.convert_to_tensor(x)
    bound = logit_bound(dtype_name(x))
    return clamp(x, -bound, bound)
