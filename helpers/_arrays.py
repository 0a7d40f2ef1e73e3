"""Array input for the whole package: one ``ArrayLike`` and one set of converters.

Every geometric helper accepts NumPy arrays, tensors, lists or scalars and works
in float64. The conversion lives here, at the bottom of the package (it imports
no other helper), so that every module refuses the same bad input (complex
values, ``None``, strings, ragged lists, NaN where finite values are needed)
with the same clear message naming the argument.
"""

from __future__ import annotations

import numpy as np
import torch

#: What the geometric helpers accept wherever they take an array.
ArrayLike = np.ndarray | torch.Tensor | list | tuple | float | int

__all__ = [
    "ArrayInputError",
    "ArrayLike",
    "as_finite_array",
    "as_float_array",
    "as_matrix",
    "as_real_number",
    "check_positive_int",
    "check_seed",
]


class ArrayInputError(TypeError, ValueError):
    """Input that is not a real numeric array (a type and a value problem at once).

    It subclasses both, as NumPy's ``AxisError`` does, so ``except TypeError``
    and ``except ValueError`` both catch it.
    """


def _real_float64(value: ArrayLike, name: str) -> np.ndarray:
    """Float64 copy of real numeric input; :class:`ArrayInputError` for anything else.

    Complex values (whose imaginary part a plain float conversion would drop
    silently), ``None``, strings and ragged sequences are refused by name.
    """
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise ArrayInputError(
                f"{name} must be real, got a complex tensor ({value.dtype})"
            )
        value = value.detach().cpu().double().numpy()
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ArrayInputError(
            f"{name} must be a rectangular numeric array ({err})"
        ) from err
    if raw.dtype.kind == "c" or (
        raw.dtype == object and any(isinstance(v, complex) for v in raw.flat)
    ):
        raise ArrayInputError(f"{name} must be real numbers, got complex values")
    if raw.dtype == object and any(v is None for v in raw.flat):
        raise ArrayInputError(f"{name} must be numeric, got None entries")
    if raw.dtype.kind not in "biufO":
        raise ArrayInputError(f"{name} must be numeric, got {raw.dtype} entries")
    try:
        return np.array(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ArrayInputError(
            f"{name} must be numeric, got {type(value).__name__}"
        ) from err


def as_float_array(value: ArrayLike, name: str) -> np.ndarray:
    """Float64 copy of real input, infinities allowed (the tropical zero is -inf)."""
    return _real_float64(value, name)


def as_finite_array(value: ArrayLike, name: str) -> np.ndarray:
    """Float64 copy of an array or tensor; clear errors for bad or non-finite input."""
    arr = _real_float64(value, name)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def as_matrix(
    value: ArrayLike, name: str, *, rows: str = "n", nonempty: bool = False
) -> np.ndarray:
    """Finite float64 ``(rows, D)`` array with ``D >= 1`` (and a row if ``nonempty``).

    ``rows`` names the first axis in the error message (``"n_generators"``...).
    """
    arr = as_finite_array(value, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape ({rows}, D), got {arr.shape}")
    if nonempty and arr.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one point (row)")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one coordinate (D >= 1)")
    return arr


def check_class_labels(labels: object, classes: int, name: str = "labels") -> None:
    """Raise a clear error unless ``labels`` is a 1-D integer tensor in 0..classes-1."""
    if (
        not isinstance(labels, torch.Tensor)
        or labels.dim() != 1
        or labels.is_floating_point()
        or labels.is_complex()
        or labels.dtype == torch.bool
    ):
        raise ValueError(
            f"{name} must be a 1-D integer tensor of class labels, got "
            f"{type(labels).__name__} {getattr(labels, 'dtype', '')} "
            f"{tuple(getattr(labels, 'shape', ()))}"
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(
            f"{name}: labels must lie in 0..{classes - 1} ({classes} classes), "
            f"found {int(labels.min())}..{int(labels.max())}"
        )


def _is_int(value: object) -> bool:
    """True for Python and NumPy integers (never for bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int if it is a positive integer, else a clear error."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_seed(seed: object, name: str = "seed") -> int:
    """A random seed must be a non-negative integer (what NumPy and torch accept)."""
    if not _is_int(seed):
        raise TypeError(
            f"{name} must be a non-negative int, got {type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed}")
    return int(seed)


def as_real_number(value: object, name: str) -> float:
    """A finite real scalar (int, float, NumPy scalar or one-element 0-d tensor)."""
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_complex():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)
