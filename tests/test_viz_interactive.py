"""The interactive (plotly slider) and assignment figures of chapters 7 and 8."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from matplotlib.figure import Figure

from helpers.viz import compress as vc
from helpers.viz import morph as vm


def _bounds_table() -> pd.DataFrame:
    """A small table like chapter 8's section 4: two methods, three kept fractions."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        [
            {
                "method": m,
                "keep": k,
                "accuracy": rng.random(),
                "measured": rng.random() + 0.1,
                "bound": 10 + rng.random(),
            }
            for m in ["tropnnc", "magnitude"]
            for k in [0.5, 0.25, 0.1]
        ]
    )


def test_slider_compression_has_one_frame_per_keep_and_static_slider():
    table = _bounds_table()
    fig = vc.slider_compression(table, baseline=0.9)
    assert isinstance(fig, go.Figure)
    assert [f.name for f in fig.frames] == ["50 %", "25 %", "10 %"]
    slider = fig.layout.sliders[0]
    assert [s["method"] for s in slider.steps] == ["animate"] * 3
    # the frame at 10 % shows that fraction's values, method by method
    last = fig.frames[-1].data
    sub = table[table["keep"] == 0.1]
    assert np.allclose(last[0].y, 100 * sub["accuracy"])
    assert np.allclose(last[2].y, sub["bound"])
    assert fig.layout.title.text and fig.layout.xaxis.title.text
    assert fig.layout.yaxis3.type == "log"


def test_slider_compression_rejects_missing_columns():
    with pytest.raises(ValueError, match="lacks columns"):
        vc.slider_compression(_bounds_table().drop(columns="bound"))


def test_plot_neuron_assignments_labels_kept_merged_removed():
    assign = {
        "tropnnc": np.array([0, 0, 1, 1, 2, -1]),
        "magnitude": np.array([-1, 0, -1, 1, 2, -1]),
    }
    fig = vc.plot_neuron_assignments(assign, order=np.array([5, 4, 3, 2, 1, 0]))
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0].endswith("3 new, 2 merged, 1 removed")
    assert labels[1].endswith("3 new, 0 merged, 3 removed")
    assert fig.axes[0].get_title() and fig.axes[0].get_xlabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="same neurons"):
        vc.plot_neuron_assignments({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="permutation"):
        vc.plot_neuron_assignments(assign, order=np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="empty"):
        vc.plot_neuron_assignments({})


def test_slider_filters_kept_moves_marker_and_bars():
    curves = pd.DataFrame(
        [
            {"order": o, "filters kept": k, "accuracy": a * k / 8}
            for o, a in [("most wins first", 1.0), ("random", 0.5)]
            for k in [1, 2, 4, 8]
        ]
    )
    per_digit = {k: np.full(10, k / 8) for k in [1, 2, 4, 8]}
    fig = vm.slider_filters_kept(curves, per_digit, unpruned=0.95)
    assert isinstance(fig, go.Figure)
    assert [f.name for f in fig.frames] == ["1", "2", "4", "8"]
    assert all(list(f.traces) == [2, 3] for f in fig.frames)
    marker, bars = fig.frames[1].data
    assert marker.x == (2,) and np.isclose(marker.y[0], 100 * 2 / 8)
    assert np.allclose(bars.y, 100 * per_digit[2])
    assert fig.layout.sliders[0].active == 3
    with pytest.raises(ValueError, match="columns"):
        vm.slider_filters_kept(curves.drop(columns="order"), per_digit, 0.9)
    with pytest.raises(ValueError, match="at least two"):
        vm.slider_filters_kept(curves, {1: per_digit[1]}, 0.9)


def test_frame_steps_jump_to_named_frames_without_a_kernel():
    """Each step animates to its own frame at once; labels default to the names."""
    from helpers.viz import frame_steps

    steps = frame_steps(["a", "b"], redraw=False)
    assert [s["label"] for s in steps] == ["a", "b"]
    assert [s["args"][0] for s in steps] == [["a"], ["b"]]
    assert all(s["method"] == "animate" for s in steps)
    assert steps[0]["args"][1]["frame"] == {"duration": 0, "redraw": False}
    assert [s["label"] for s in frame_steps(["a"], ["K = 1"])] == ["K = 1"]
    with pytest.raises(ValueError, match="labels"):
        frame_steps(["a", "b"], ["only one"])
