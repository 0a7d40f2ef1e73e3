"""The activation-region slider: one frame per value, each step bound to its frame."""

import numpy as np
import pytest

from helpers.regions import enumerate_regions
from helpers.relu_tropical import random_relu_net
from helpers.viz.zonotopes import slider_activation_regions


def _regions(scale: float):
    net = random_relu_net(2, [4, 3], seed=0, init="he")
    for p in net.parameters():
        p.data.mul_(scale)
    return enumerate_regions(net, -2.0, 2.0)


def test_slider_has_one_frame_per_value_and_static_steps():
    """Each slider step animates to its own frame; no kernel callback is involved."""
    values = [0.5, 1.0, 1.5]
    regs = [_regions(v) for v in values]
    counts = {"activation regions": [len(r) for r in regs]}
    fig = slider_activation_regions(regs, values, counts, "test", parameter="s")
    assert [f.name for f in fig.frames] == ["s=0.5", "s=1", "s=1.5"]
    steps = fig.layout.sliders[0].steps
    assert [s.args[0][0] for s in steps] == [f.name for f in fig.frames]
    assert all(s.method == "animate" for s in steps)
    # every region of a step is drawn: polygons in the fills = regions
    for frame, r in zip(fig.frames, regs):
        fills = [t for t in frame.data if t.fill == "toself"]
        closed = sum(sum(v is None for v in t.x) for t in fills)
        assert closed == len(r)
        assert str(len(r)) in frame.layout.title.text


def test_slider_rejects_mismatched_inputs():
    """Lists of different lengths or empty steps are refused with a clear message."""
    regs = [_regions(1.0)]
    with pytest.raises(ValueError, match="one region list per parameter value"):
        slider_activation_regions(regs, [0.0, 1.0], {}, "t")
    with pytest.raises(ValueError, match="counts"):
        slider_activation_regions(regs, [0.0], {"n": [1, 2]}, "t")
    with pytest.raises(ValueError, match="non-empty"):
        slider_activation_regions([[]], [0.0], {}, "t")
    assert np.isfinite(regs[0][0].size)
