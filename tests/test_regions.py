"""Tests of helpers.regions: exact activation regions and their counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.regions import (
    activation_patterns,
    count_activation_regions,
    count_linear_regions,
    enumerate_regions,
    linear_regions,
)
from helpers.relu_tropical import (
    forward_numpy,
    mlp_layers,
    random_relu_net,
    sawtooth_net,
)


def test_sawtooth_has_exponentially_many_pieces():
    """Depth L with 2 units per layer gives 2^L regions on [0, 1]."""
    for depth in range(1, 7):
        net = sawtooth_net(depth)
        regions = enumerate_regions(net, 0.0, 1.0)
        assert len(regions) == 2**depth
        slopes = np.array([r.weight[0, 0] for r in regions])
        assert np.allclose(np.abs(slopes), 2.0**depth)


def test_exact_regions_tile_the_box_and_carry_the_right_affine_maps():
    """Regions cover the box, patterns are distinct and each affine map is the net's."""
    rng = np.random.default_rng(7)
    for seed in range(6):
        net = random_relu_net(2, [5, 4], 2, seed=seed)
        regions = enumerate_regions(net, -2.0, 2.0)
        assert sum(r.size for r in regions) == pytest.approx(16.0, rel=1e-9)
        pats = {r.pattern.tobytes() for r in regions}
        assert len(pats) == len(regions)
        layers = mlp_layers(net)
        for r in regions:
            w = rng.dirichlet(np.ones(len(r.vertices)))
            x = (w @ r.vertices)[None, :]  # a point inside the convex region
            assert np.allclose(forward_numpy(layers, x)[0], r.weight @ x[0] + r.bias)
            assert (activation_patterns(net, x)[0] == r.pattern).all()


def test_grid_count_never_exceeds_exact_count():
    """Grid counting finds a subset of the regions; a fine grid finds most of them."""
    for seed in range(4):
        net = random_relu_net(2, [6, 6], 1, seed=seed)
        exact = count_activation_regions(net, -1, 1, method="exact")
        grid = count_activation_regions(net, -1, 1, method="grid", resolution=600)
        assert grid <= exact
        assert grid >= 0.8 * exact
    with pytest.raises(ValueError, match="method"):
        count_activation_regions(net, method="random")
    with pytest.raises(ValueError, match="1 or 2 inputs"):
        enumerate_regions(random_relu_net(3, [2], 1))


def test_grid_resolution_must_be_an_int():
    """A fractional resolution is named instead of failing inside numpy."""
    with pytest.raises(TypeError, match="resolution must be an int"):
        count_activation_regions(
            random_relu_net(2, [3]), method="grid", resolution=10.5
        )


def test_regions_left_relu_tropical():
    """The region code has one home: relu_tropical no longer defines it."""
    import helpers.relu_tropical as rt

    for name in (
        "Region",
        "activation_patterns",
        "count_activation_regions",
        "count_linear_regions",
        "enumerate_regions",
        "linear_regions",
    ):
        assert not hasattr(rt, name)


def test_count_linear_regions_is_the_activation_count():
    """The old name stays as an alias of count_activation_regions."""
    net = random_relu_net(2, [4, 3], seed=3)
    for method in ("exact", "grid"):
        assert count_linear_regions(net, -2, 2, method) == count_activation_regions(
            net, -2, 2, method
        )


def test_linear_regions_merge_neighbours_with_one_affine_map():
    """A unit with output weight 0 splits activation regions but no linear region."""
    for d in (1, 2):
        for seed in range(3):
            net = random_relu_net(d, [4], seed=seed, init="he")
            small = random_relu_net(d, [3], seed=seed, init="he")
            with torch.no_grad():
                small[0].weight.copy_(net[0].weight[:3])
                small[0].bias.copy_(net[0].bias[:3])
                net[2].weight[0, 3] = 0.0  # unit 3 is cut, its kink is invisible
                small[2].weight.copy_(net[2].weight[:, :3])
                small[2].bias.copy_(net[2].bias)
            groups = linear_regions(net, -3.0, 3.0)
            assert len(groups) == count_activation_regions(small, -3.0, 3.0)
            assert len(groups) <= count_activation_regions(net, -3.0, 3.0)
            assert sum(len(g) for g in groups) == len(enumerate_regions(net, -3, 3))
            for g in groups:  # one affine map per group
                for r in g:
                    assert np.allclose(r.weight, g[0].weight)
                    assert np.allclose(r.bias, g[0].bias)


def test_linear_regions_of_a_cancelling_pair():
    """relu(x) - relu(x) has two activation regions and one linear region."""
    net = torch.nn.Sequential(
        torch.nn.Linear(1, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1)
    ).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
        net[2].bias.zero_()
    assert count_activation_regions(net, -1.0, 1.0) == 2
    assert len(linear_regions(net, -1.0, 1.0)) == 1
