"""The one array converter every geometric helper uses (helpers._arrays)."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from helpers._arrays import ArrayInputError, as_finite_array, as_float_array, as_matrix


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[1 + 1j]], "complex"),
        (np.array([1.0], dtype=complex), "complex"),
        (torch.tensor([1.0 + 0j]), "complex tensor"),
        ([None, 1.0], "None"),
        ([["a", "b"]], "numeric"),
        ([[1.0], [1.0, 2.0]], "rectangular"),
    ],
)
def test_bad_input_is_refused_as_both_type_and_value_error(value, message):
    """Non-numeric input raises one error caught as TypeError and as ValueError."""
    for convert in (as_float_array, as_finite_array):
        with pytest.raises(ArrayInputError, match=message):
            convert(value, "x")
    with pytest.raises(TypeError):
        as_finite_array(value, "x")
    with pytest.raises(ValueError):
        as_float_array(value, "x")


def test_infinities_are_allowed_only_where_asked():
    """``-inf`` is the tropical zero; the finite converter names the argument."""
    assert as_float_array([-np.inf, 1.0], "a")[0] == -np.inf
    with pytest.raises(ValueError, match="weights contains NaN"):
        as_finite_array([np.nan], "weights")


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (np.zeros(3), {}, r"shape \(n, D\)"),
        (np.zeros((2, 0)), {}, "at least one coordinate"),
        (np.zeros((0, 2)), {"nonempty": True}, "at least one point"),
        (np.zeros(3), {"rows": "n_generators"}, r"\(n_generators, D\)"),
    ],
)
def test_as_matrix_shapes(value, kwargs, message):
    """Wrong rank, no coordinates or (when required) no rows: a clear ValueError."""
    with pytest.raises(ValueError, match=message):
        as_matrix(value, "G", **kwargs)


@given(
    st.lists(
        st.lists(st.floats(-1e12, 1e12), min_size=2, max_size=2),
        min_size=0,
        max_size=6,
    )
)
def test_as_matrix_copies_lists_tensors_and_arrays_alike(rows):
    """Lists, arrays and tensors of the same numbers give the same float64 copy."""
    ref = np.array(rows, dtype=np.float64).reshape(-1, 2)
    for value in (rows if rows else ref, ref, torch.from_numpy(ref.copy())):
        out = as_matrix(value, "G")
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, ref)
    assert not np.shares_memory(as_matrix(ref, "G"), ref)  # a copy: input untouched
