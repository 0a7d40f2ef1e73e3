"""Hybrid linear-morphological heads: shapes, masks, matched pruning, training."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import hybrid
from helpers.train import (
    RECIPES,
    ShuffledBatches,
    checkpoint_dir,
    fit,
    read_manifest,
)
from helpers.viz import training as viz

WIDTH = 1 / 16  # channels 8, 8, 16, 16, 16: d = 16, h = 32


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors run faster on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _images(n: int, seed: int = 0) -> torch.Tensor:
    """Random 32x32 RGB images in [0, 1]."""
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _trained_like(head: nn.Module, seed: int = 0) -> nn.Module:
    """Give a head distinct random weights (as after training) and eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return head.eval()


@pytest.mark.parametrize("kind", hybrid.HEADS)
def test_shapes_of_every_head(kind):
    """Heads map (N, d) to (N, C); the whole net maps images to (N, C) logits."""
    head = hybrid.make_head(kind, d=12, h=20, classes=7)
    assert head(torch.randn(5, 12)).shape == (5, 7)
    net = hybrid.HybridNet(kind, width=WIDTH, num_classes=4)
    assert net.backbone.channels == (8, 8, 16, 16, 16)
    assert net.hidden == 32
    assert net(_images(3)).shape == (3, 4)
    assert hybrid.head_kind(net) == kind
    assert hybrid.head_sizes(net) == (16, 32, 4)


def test_reference_architecture_sizes():
    """Width 1 is the reference: channels 128,128,256,256,256, d = 256, h = 512."""
    net = hybrid.HybridNet("sparse", width=1.0)
    assert net.backbone.channels == hybrid.REFERENCE_CHANNELS
    assert hybrid.head_sizes(net) == (256, 512, 10)
    assert net.head.morph.k == 1024  # about two live inputs per max-plus neuron
    assert hybrid.backbone_channels(0.25) == (32, 32, 64, 64, 64)


def test_bad_arguments_raise_clear_errors():
    """Unknown heads, widths, ratios and image sizes are rejected by name."""
    with pytest.raises(ValueError, match="unknown head"):
        hybrid.HybridNet("tanh")
    with pytest.raises(ValueError, match="width"):
        hybrid.backbone_channels(0)
    with pytest.raises(TypeError, match="width"):
        hybrid.backbone_channels("wide")
    with pytest.raises(ValueError, match="k"):
        hybrid.make_head("relu", 4, 4, k=3)
    with pytest.raises(ValueError, match="r1"):
        hybrid.prune_head(hybrid.make_head("relu", 4, 8), 1.0, 0.5)
    with pytest.raises(ValueError, match="32, 32"):
        hybrid.HybridNet("relu", width=WIDTH)(torch.rand(2, 3, 28, 28))
    with pytest.raises(TypeError, match="hybrid heads"):
        hybrid.prune_head(nn.Linear(3, 3), 0.5, 0.5)


def test_sparse_head_respects_its_mask():
    """Masked max-plus weights change nothing and receive no gradient."""
    torch.manual_seed(0)
    head = hybrid.make_head("sparse", d=10, h=24, classes=3).eval()
    morph = head.morph
    assert morph.mask is not None and 0 < int(morph.mask.sum()) < morph.mask.numel()
    x = torch.randn(16, 10)
    before = head(x)
    with torch.no_grad():
        morph.weight[~morph.mask] = 100.0  # would win every max if it were live
    assert torch.equal(head(x), before)
    head.train()
    head(x).sum().backward()
    assert morph.weight.grad[~morph.mask].abs().max() == 0
    assert morph.weight.grad[morph.mask].abs().sum() > 0


@settings(max_examples=25, deadline=None)
@given(
    r1=st.floats(0.0, 0.97),
    r2=st.floats(0.0, 0.99),
    d=st.integers(6, 24),
    h=st.integers(8, 24),
    seed=st.integers(0, 2**16),
)
def test_pruning_budgets_match(r1, r2, d, h, seed):
    """Every head keeps the ReLU head's first-stage budget and last-layer weights."""
    torch.manual_seed(seed)
    budget, keep_last = hybrid.parameter_budget(d, h, 5, r1, r2)
    live = hybrid.make_head("sparse", d, h, 5).morph.live_connections
    if budget - h < live:  # the sparse head's own layer exceeds the budget
        return
    for kind in hybrid.HEADS:
        torch.manual_seed(seed)
        head = _trained_like(hybrid.make_head(kind, d, h, 5), seed)
        pruned = hybrid.prune_head(head, r1, r2)
        assert hybrid.first_stage_parameters(pruned) == budget, kind
        assert hybrid.last_layer_weights(pruned) == keep_last, kind
        # the original is left untouched
        assert hybrid.last_layer_weights(head) == head.fc2.weight.numel()


def test_pruning_is_l1_on_linears_and_by_value_in_maxplus():
    """Kept linear weights are the largest |w|; kept max-plus weights the largest w."""
    torch.manual_seed(1)
    relu = _trained_like(hybrid.make_head("relu", 16, 32, 10))
    pruned = hybrid.prune_head(relu, 0.8, 0.9)
    w, kept = relu.fc1.weight.abs(), pruned.fc1.weight != 0
    assert w[kept].min() >= w[~kept].max()
    dense = _trained_like(hybrid.make_head("dense", 16, 32, 10))
    pruned = hybrid.prune_head(dense, 0.8, 0.9)
    mask = pruned.morph.mask
    assert mask is not None and 0 < int(mask.sum()) < mask.numel()
    assert dense.morph.weight[mask].min() >= dense.morph.weight[~mask].max()
    assert dense.morph.mask is None  # the original stays dense
    x = torch.randn(8, 16)
    assert pruned(x).shape == (8, 10) and torch.isfinite(pruned(x)).all()


def test_budget_too_small_for_sparse_layer_raises():
    """A budget below the sparse max-plus layer's own parameters is an error."""
    torch.manual_seed(0)
    head = hybrid.make_head("sparse", 4, 64, 3)
    with pytest.raises(ValueError, match="below the sparse max-plus"):
        hybrid.prune_head(head, 0.95, 0.5)


@pytest.mark.parametrize("kind", hybrid.HEADS)
def test_short_training_reduces_the_loss(kind):
    """A few Adam steps on a fixed batch lower the cross-entropy of every head."""
    torch.manual_seed(0)
    net = hybrid.HybridNet(kind, width=WIDTH)
    x, y = _images(32), torch.arange(32) % 10
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_extract_features_equals_backbone_output():
    """Features equal the backbone's eval-mode output, whatever the batch size."""
    torch.manual_seed(0)
    net = hybrid.HybridNet("maxout", width=WIDTH)
    x = _images(37)
    net.backbone.set_input_stats(x)
    net.train()
    feats = hybrid.extract_features(net, x, batch_size=8)
    assert net.backbone.training  # the mode is restored
    with torch.no_grad():
        expected = net.backbone.eval()(x)
    assert feats.shape == (37, 16)
    torch.testing.assert_close(feats, expected)
    torch.testing.assert_close(hybrid.extract_features(net.backbone, x), expected)
    net.eval()
    torch.testing.assert_close(net.head(feats), net(x))


def test_split_and_fit_keep_best_keeps_the_best_epoch():
    """The split is a seeded partition; training ends on the best validation epoch."""
    torch.manual_seed(0)
    x = torch.randn(200, 3, 32, 32) * 0.1
    y = torch.arange(200) % 2
    x[y == 1] += 0.5
    (xt, yt), (xv, yv) = hybrid.split_train_val(x, y, 0.25, seed=3)
    assert len(yt) == 150 and len(yv) == 50
    again = hybrid.split_train_val(x, y, 0.25, seed=3)
    assert torch.equal(again[1][0], xv)
    net = hybrid.HybridNet("relu", width=WIDTH, num_classes=2)
    hist = fit(
        net,
        ShuffledBatches(xt, yt, 32),
        val=(xv, yv),
        keep_best=True,
        epochs=3,
        progress=False,
    )
    assert hist["epoch"] == [1, 2, 3]
    best = hist["best_epoch"][0]
    assert hist["val_acc"][best - 1] == max(hist["val_acc"])
    from helpers.train import evaluate

    assert evaluate(net, (xv, yv))["accuracy"] == pytest.approx(max(hist["val_acc"]))


def test_pruning_grid_and_accuracy_on_features():
    """The grid has one accuracy in [0, 1] per (r1, r2) and matches direct pruning."""
    torch.manual_seed(0)
    head = _trained_like(hybrid.make_head("relu", 16, 32, 10))
    feats, labels = torch.randn(64, 16), torch.randint(0, 10, (64,))
    grid = hybrid.pruning_grid(head, feats, labels, ratios=(0.5, 0.9), progress=False)
    assert grid.shape == (2, 2) and ((grid >= 0) & (grid <= 1)).all()
    pruned = hybrid.prune_head(head, 0.9, 0.5)
    direct = hybrid.accuracy_on_features(pruned, feats, labels)
    assert grid[1, 0] == direct
    with pytest.raises(ValueError, match="differ in length"):
        hybrid.accuracy_on_features(head, feats, labels[:3])


def test_near_zero_fraction():
    """The share of entries below rel * max |w| is counted exactly."""
    w = torch.tensor([0.0, 0.01, -0.02, 0.5, -1.0])
    assert hybrid.near_zero_fraction(w, rel=0.05) == pytest.approx(0.6)
    with pytest.raises(ValueError):
        hybrid.near_zero_fraction(w, rel=1.5)


def _check_shipped(name: str, kind: str, seed: int, entry: dict) -> None:
    """A shipped hybrid checkpoint: small, recorded, and loads into its recipe."""
    path = checkpoint_dir() / f"{name}.pt"
    assert path.stat().st_size <= 5 * 1024 * 1024
    assert entry["config"]["head"] == kind and entry["seed"] == seed
    assert entry["config"]["weight_decay"] == 0.0
    assert len(entry["history"]["val_acc"]) == entry["config"]["epochs"]
    net = RECIPES[name].build()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    assert net(_images(2)).shape == (2, 10)


@pytest.mark.parametrize("seed", hybrid.SEEDS)
def test_recipes_registered_and_shipped_checkpoints_load(seed):
    """One recipe per head and seed; shipped files load into freshly built networks."""
    manifest, missing = read_manifest(), []
    for kind in hybrid.HEADS:
        name = hybrid.checkpoint_name(kind, seed=seed)
        assert name in RECIPES and name.endswith(f"_s{seed}")
        if (checkpoint_dir() / f"{name}.pt").exists():
            _check_shipped(name, kind, seed, manifest[name])
        else:
            missing.append(name)  # the others are still checked; skipped below
    with pytest.raises(ValueError, match="seed"):
        hybrid.checkpoint_name("relu", seed=-1)
    if missing:
        pytest.skip(
            f"not shipped in {checkpoint_dir()}: {missing} (chapter 6 trains "
            "them when run)"
        )


def test_recipe_builds_are_seeded_and_distinct():
    """Rebuilding a recipe gives its initial weights again; seeds differ."""
    a = RECIPES[hybrid.checkpoint_name("sparse", seed=0)].build()
    b = RECIPES[hybrid.checkpoint_name("sparse", seed=0)].build()
    c = RECIPES[hybrid.checkpoint_name("sparse", seed=1)].build()
    assert torch.equal(a.head.fc1.weight, b.head.fc1.weight)
    assert torch.equal(a.head.morph.mask, b.head.morph.mask)
    assert not torch.equal(a.head.fc1.weight, c.head.fc1.weight)


def test_near_zero_by_layer_and_row_drift():
    """Per-layer near-zero shares use both maxout pieces; drift is per row."""
    torch.manual_seed(0)
    head = hybrid.make_head("maxout", 8, 10, 3)
    with torch.no_grad():
        head.pieces[0].weight.zero_()
        head.pieces[0].weight[0, 0] = 1.0
    shares = hybrid.near_zero_by_layer(head)
    assert shares["first linear"] == pytest.approx(
        (80 - 1) / 160 + 80 / 160 * 0.0, abs=0.1
    )
    assert set(shares) == {"first linear", "last linear"}
    w = torch.randn(4, 3)
    moved = w.clone()
    moved[2, 1] += 0.5
    np.testing.assert_allclose(hybrid.row_drift(moved, w), [0, 0, 0.5, 0], atol=1e-7)
    with pytest.raises(ValueError, match="one shape"):
        hybrid.row_drift(w, w[:2])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), kind=st.sampled_from(("dense", "sparse")))
def test_removing_never_winning_units_keeps_the_output(seed, kind):
    """Units that never win on some inputs can go: same output there, fewer params."""
    torch.manual_seed(seed)
    head = _trained_like(hybrid.make_head(kind, 6, 20, 4), seed)
    if kind == "sparse":
        torch.manual_seed(seed)
        head.morph.mask = hybrid.make_head("sparse", 6, 20, 4).morph.mask
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(seed))
    never = hybrid.maxplus_usage(head, x)["never_wins"]
    if never.all():
        return
    small = hybrid.remove_units(head, ~never)
    assert small.fc1.weight.shape == (int((~never).sum()), 6)
    with torch.no_grad():
        torch.testing.assert_close(small(x), head(x))
    removed = int(never.sum())
    saved = hybrid.head_parameters(head) - hybrid.head_parameters(small)
    live_cols = (
        head.morph.mask[:, torch.as_tensor(never)].sum()
        if head.morph.mask is not None
        else removed * 20
    )
    assert saved == removed * (6 + 2) + int(live_cols)
    with pytest.raises(ValueError, match="keep"):
        hybrid.remove_units(head, np.zeros(20, dtype=bool))
    with pytest.raises(TypeError, match="max-plus"):
        hybrid.remove_units(hybrid.make_head("relu", 6, 20, 4), ~never)


def test_recalibrate_batchnorm_matches_the_data():
    """Recalibrated running stats are the plain mean/variance of the BN inputs."""
    torch.manual_seed(0)
    head = _trained_like(hybrid.make_head("relu", 8, 12, 3))
    feats = torch.randn(96, 8) * 3 + 1
    hybrid.recalibrate_batchnorm(head, feats, batch_size=96)
    assert not head.training
    with torch.no_grad():
        z = head.fc1(feats)
    torch.testing.assert_close(head.bn.running_mean, z.mean(0))
    torch.testing.assert_close(head.bn.running_var, z.var(0), rtol=1e-4, atol=1e-5)
    assert head.bn.momentum == 0.1  # restored
    with pytest.raises(ValueError, match="features"):
        hybrid.recalibrate_batchnorm(head, torch.randn(1, 8))
    labels = torch.randint(0, 3, (96,), generator=torch.Generator().manual_seed(1))
    grid = hybrid.pruning_grid(
        head, feats, labels, (0.5,), progress=False, calibration=feats
    )
    pruned = hybrid.recalibrate_batchnorm(hybrid.prune_head(head, 0.5, 0.5), feats)
    assert grid[0, 0] == hybrid.accuracy_on_features(pruned, feats, labels)


def test_weight_decay_pulls_unused_rows_to_zero():
    """With Adam's L2 term a row without loss gradient shrinks; without, it stays."""
    torch.manual_seed(0)
    x = torch.randn(256, 6)
    y = (x[:, 0] > 0).long()
    rows = {}
    for decay in (0.0, 1e-4):
        torch.manual_seed(0)
        head = hybrid.make_head("sparse", 6, 16, 2)
        dead = ~head.morph.mask.any(dim=0)
        start = head.fc1.weight.detach().clone()
        hist = fit(
            head,
            ShuffledBatches(x, y, 8),
            val=(x, y),
            keep_best=True,
            epochs=4,
            lr=1e-2,
            progress=False,
            weight_decay=decay,
            track=lambda m: {"n": 1.0},
        )
        assert hist["n"] == [1.0] * 4
        rows[decay] = (head.fc1.weight.detach()[dead], start[dead])
    if rows[0.0][0].numel():
        assert torch.equal(*rows[0.0])
        assert rows[1e-4][0].abs().mean() < 0.5 * rows[1e-4][1].abs().mean()
    with pytest.raises(ValueError, match="weight_decay"):
        fit(head, (x, y), val=(x, y), epochs=1, weight_decay=-1.0)


def test_figures_have_titles_and_labels():
    """Each plotting helper returns a labelled figure."""
    hist = {"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_acc": [0.5, 0.7]}
    fig = viz.convergence_curves({"a": hist, "b": [hist, hist]})
    assert fig.axes[1].get_ylabel() == "validation accuracy (%)"
    fig = viz.weight_histograms({"a": torch.randn(10, 10)})
    assert "|w|" in fig.axes[0].get_xlabel() and fig.axes[0].get_title() == "a"
    grids = {"a": np.full((2, 2), 0.5), "b": np.eye(2)}
    fig = viz.pruning_heatmaps(grids, (0.7, 0.9))
    assert fig.axes[0].get_ylabel().startswith("r1")
    pfig = viz.pruning_slider(grids, (0.7, 0.9), unpruned={"a": 0.9})
    assert len(pfig.frames) == 2 and pfig.layout.sliders
    assert pfig.layout.yaxis.title.text == "test accuracy (%)"
    with pytest.raises(ValueError, match="expected"):
        viz.pruning_heatmaps({"a": np.zeros((3, 3))}, (0.7, 0.9))


def test_maxplus_usage_accounts_for_every_maximum():
    """Unit win shares plus the bias share cover every maximum; dead units never win."""
    torch.manual_seed(0)
    head = _trained_like(hybrid.make_head("sparse", 12, 40, 3))
    head.morph.mask = hybrid.make_head("sparse", 12, 40, 3).morph.mask
    usage = hybrid.maxplus_usage(head, torch.randn(300, 12), batch_size=64)
    assert usage["win_share"].sum() + usage["bias_share"] == pytest.approx(1.0)
    assert usage["no_live_output"].any()
    assert usage["never_wins"][usage["no_live_output"]].all()
    with pytest.raises(TypeError, match="max-plus head"):
        hybrid.maxplus_usage(hybrid.make_head("relu", 12, 40, 3), torch.randn(5, 12))


def test_train_and_prune_runs_every_head_and_seed():
    """The reference loop returns histories, accuracies and one grid per seed."""
    config = hybrid.HybridConfig("tiny", width=WIDTH, epochs=1, batch_size=32)
    x, y = _images(80), torch.arange(80) % 10
    out = hybrid.train_and_prune(
        ("relu", "sparse"),
        (0, 1),
        config,
        (x, y),
        (_images(20, seed=1), torch.arange(20) % 10),
        ratios=(0.5, 0.7),
        progress=False,
    )
    assert set(out) == {"relu", "sparse"}
    for entry in out.values():
        assert len(entry["histories"]) == len(entry["accuracy"]) == 2
        assert [g.shape for g in entry["grids"]] == [(2, 2), (2, 2)]
        assert isinstance(entry["net"], hybrid.HybridNet)
        assert entry["features"].shape == (20, 16)
    assert "tiny" in config.describe() and "width 0.0625" in config.describe()


def test_load_data_substitute_is_padded_fashion_mnist():
    """The stand-in is 32x32 with three equal channels and a zero border, named so."""
    X, y, source = hybrid.load_data(
        hybrid.SUBSTITUTE, train=False, limit=16, verbose=False
    )
    assert X.shape == (16, 3, 32, 32) and y.shape == (16,)
    assert torch.equal(X[:, 0], X[:, 1]) and torch.equal(X[:, 0], X[:, 2])
    assert X[:, :, :2].abs().max() == 0 and X[:, :, :, -2:].abs().max() == 0
    assert source.is_substitute and "Fashion-MNIST 32x32" in source.name
    with pytest.raises(ValueError, match="unknown dataset"):
        hybrid.load_data("imagenet")


@pytest.mark.parametrize(
    "features, labels, message",
    [
        (torch.randn(5, 8), torch.tensor([0, 1, 2, 9, 1]), r"labels must lie in 0..2"),
        (torch.randn(5, 8), torch.tensor([0.0, 1, 2, 1, 1]), "1-D integer tensor"),
        (torch.randn(5, 9), torch.tensor([0, 1, 2, 1, 1]), r"shape \(N, 8\)"),
    ],
)
def test_accuracy_and_usage_name_bad_labels_and_widths(features, labels, message):
    """Out-of-range labels and wrong feature widths get clear errors, not torch's."""
    head = hybrid.make_head("sparse", 8, 6, 3)
    with pytest.raises(ValueError, match=message):
        hybrid.accuracy_on_features(head, features, labels)
    if "shape" in message:
        with pytest.raises(ValueError, match=message):
            hybrid.maxplus_usage(head, features)


@pytest.mark.parametrize("kind", hybrid.HEADS)
def test_fine_tuning_a_pruned_head_keeps_its_pruning_pattern(kind):
    """Pruned weights stay zero, the max-plus mask stays, the rest learns."""
    torch.manual_seed(0)
    head = hybrid.make_head(kind, 16, 32, 10)
    pruned = hybrid.prune_head(head, 0.8, 0.7)
    feats = torch.randn(300, 16)
    labels = torch.randint(0, 10, (300,))
    before = {k: v.clone() for k, v in pruned.state_dict().items()}
    tuned = hybrid.fine_tune_pruned(pruned, feats, labels, epochs=2, lr=1e-2)
    after = tuned.state_dict()
    assert set(after) == set(before)  # plain weights again, no weight_orig left
    assert not tuned.training and pruned.state_dict()["fc2.weight"].equal(
        before["fc2.weight"]
    )  # the input head is untouched
    changed = False
    for key, old in before.items():
        if key.endswith("weight") and old.dim() == 2:
            zero = old == 0
            if key == "morph.weight" and "morph.mask" in before:
                zero = ~before["morph.mask"]
            assert bool((after[key][zero] == 0).all()), key
            changed |= not torch.equal(after[key][~zero], old[~zero])
    assert changed
    if "morph.mask" in before:
        assert torch.equal(after["morph.mask"], before["morph.mask"])
    assert hybrid.first_stage_parameters(tuned) == hybrid.first_stage_parameters(pruned)
    with pytest.raises(ValueError, match="features must have shape"):
        hybrid.fine_tune_pruned(pruned, torch.randn(5, 3), labels[:5])
