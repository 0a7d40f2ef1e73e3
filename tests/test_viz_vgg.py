"""Figures of chapter 9: channel fates, the accuracy/FLOPs slider, latency vs FLOPs."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from helpers.viz import compress as viz


def _results() -> pd.DataFrame:
    """Two methods at two kept fractions, with fine-tuned accuracies."""
    rows = []
    for method in ("tropnnc", "thinet"):
        for keep, acc, flops in ((0.5, 0.8, 30.0), (0.25, 0.5, 8.0)):
            rows.append(
                {
                    "method": method,
                    "keep": keep,
                    "accuracy": acc,
                    "accuracy_ft": acc + 0.1,
                    "flops_pct": flops,
                }
            )
    return pd.DataFrame(rows)


def test_fate_colors_distinguish_removed_kept_and_merged():
    """Removed, kept-alone and merged channels get three different colours."""
    colors = viz._fate_colors(np.array([-1, 0, 1, 1]))
    assert np.allclose(colors[0], (0.88, 0.88, 0.88))
    assert not np.allclose(colors[1], colors[0])
    assert np.allclose(colors[2], colors[3]) and not np.allclose(colors[2], colors[1])


def test_plot_channel_fates_returns_figure_and_checks_input():
    """One panel per layer; a wrong order or a missing layer is a clear error."""
    fates = {
        "tropnnc": {"conv1": np.array([0, 0, 1, 2]), "conv2": np.arange(3)},
        "l1_filter": {"conv1": np.array([-1, 0, 1, -1]), "conv2": np.array([0, -1, 1])},
    }
    fig = viz.plot_channel_fates(fates, order={"conv1": np.array([3, 2, 1, 0])})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_title().startswith("conv1")
    with pytest.raises(ValueError, match="permutation"):
        viz.plot_channel_fates(fates, order={"conv1": np.array([0, 0, 1, 2])})
    with pytest.raises(ValueError, match="no assignment"):
        viz.plot_channel_fates({**fates, "random": {"conv1": np.arange(4)}})
    with pytest.raises(ValueError, match="channels"):
        viz.plot_channel_fates({"a": {"c": np.arange(3)}, "b": {"c": np.arange(4)}})


def test_accuracy_flops_slider_has_one_frame_per_keep():
    """Frames and slider steps match the kept fractions; bars carry the numbers."""
    fig = viz.accuracy_flops_slider(_results(), baseline=0.9)
    assert [f.name for f in fig.frames] == ["50 %", "25 %"]
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["50 %", "25 %"]
    assert all(s.method == "animate" for s in steps)
    first = fig.frames[1].data
    assert len(first) == 3 and list(first[0].y) == pytest.approx([50.0, 50.0])
    assert list(first[1].y) == pytest.approx([60.0, 60.0])
    assert list(first[2].y) == pytest.approx([8.0, 8.0])
    no_ft = viz.accuracy_flops_slider(_results().drop(columns="accuracy_ft"))
    assert len(no_ft.frames[0].data) == 2
    with pytest.raises(ValueError, match="flops_pct"):
        viz.accuracy_flops_slider(_results().drop(columns="flops_pct"))


def test_plot_latency_vs_flops():
    """A scatter per model plus the diagonal; missing columns are named."""
    costs = pd.DataFrame(
        {
            "model": ["small", "small", "big"],
            "setting": ["50 %", "25 %", "50 %"],
            "flops_ratio": [0.3, 0.1, 0.3],
            "latency_ratio": [0.6, 0.4, 0.35],
        }
    )
    fig = viz.plot_latency_vs_flops(costs)
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_xlabel().startswith("FLOPs")
    with pytest.raises(ValueError, match="latency_ratio"):
        viz.plot_latency_vs_flops(costs.drop(columns="latency_ratio"))
