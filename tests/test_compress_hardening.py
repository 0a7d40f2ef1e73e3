"""compress on readers' own networks: never a silent wrong result, never a raw error.

Each test names a network or an argument that used to be accepted with a wrong
result (or refused by a raw error from deep inside torch or NumPy) and checks
the function now returns the right model or refuses clearly, naming why.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from helpers import data, models, train
from helpers.compress import (
    METHODS,
    check_keep,
    compress,
    hidden_layers,
    load_unit_stats,
    n_keep,
    record_unit_stats,
    thinet,
    tropnnc,
)
from helpers.compress.refit import UnderdeterminedWarning
from helpers.metrics import compare_latency, count_flops, measure_latency, summarize
from helpers.train import evaluate


def conv_net() -> nn.Sequential:
    """A seeded conv -> ReLU -> conv network on (N, 3, 8, 8) inputs."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 4, 3, padding=1)
    ).eval()


def mlp(outputs: int = 1) -> nn.Sequential:
    """A seeded 5 -> 12 -> outputs ReLU network (one output suits every method)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, outputs)).eval()


# --------------------------------------------------------------------------- #
# keep = 1 is the identity, whatever the sample count
# --------------------------------------------------------------------------- #

REFITS = [False, True, "bias"]


@pytest.mark.parametrize("samples", [1, 2, 60])
@pytest.mark.parametrize("refit", REFITS)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_keep_one_returns_the_same_function(method, refit, samples):
    nets = [(mlp(), (5,))]
    if method != "zonotope_kmeans":  # it needs a single-output consumer
        nets.append((conv_net(), (3, 8, 8)))
    for net, shape in nets:
        x = torch.randn(samples, *shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnderdeterminedWarning)
            small = compress(net, method, 1.0, data=x, refit=refit)
        fresh = torch.randn(40, *shape)
        with torch.no_grad():
            gap = (small(fresh) - net(fresh)).abs().max().item()
        assert gap < 1e-5, (method, refit, samples, type(net[0]).__name__)


def test_thinet_on_few_samples_warns_and_keeps_the_function():
    net, x = conv_net(), torch.randn(1, 3, 8, 8)
    with pytest.warns(UnderdeterminedWarning, match=r"ThiNet scaling of '0'"):
        small = compress(net, "thinet", 1.0, data=x)
    fresh = torch.randn(5, 3, 8, 8)
    assert torch.allclose(small(fresh), net(fresh), atol=1e-5)


def test_refit_on_few_samples_warns_and_keeps_the_function():
    net, x = mlp(3), torch.randn(4, 5)
    with pytest.warns(UnderdeterminedWarning, match=r"refit of '2'.*4 sample rows"):
        small = compress(net, "magnitude", 1.0, data=x, refit=True)
    fresh = torch.randn(20, 5)
    assert torch.allclose(small(fresh), net(fresh), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnderdeterminedWarning)
        compress(net, "magnitude", 0.5, data=torch.randn(200, 5), refit=True)


# --------------------------------------------------------------------------- #
# Shared modules, odd flattens, hooks: refused by name
# --------------------------------------------------------------------------- #


class CalledTwice(nn.Module):
    """c2(relu(c2(relu(c1(x))))): the consumer c2 is applied twice."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps."""
        return self.c2(torch.relu(self.c2(torch.relu(self.c1(x)))))


class SharedConsumer(nn.Module):
    """One consumer fc for two producers a and b."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.fc = nn.Linear(5, 6), nn.Linear(5, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs."""
        return self.fc(torch.relu(self.a(x))) * self.fc(torch.relu(self.b(x)))


class TwoNames(nn.Module):
    """fc2 is registered under a second name and called through it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 6), nn.Linear(6, 2)
        self.alias = self.fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs."""
        return self.alias(torch.relu(self.fc1(x)))


class Tied(nn.Module):
    """fc2's weight is also fc3's."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(5, 6), nn.Linear(6, 6), nn.Linear(6, 6)
        self.fc3.weight = self.fc2.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs."""
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


@pytest.mark.parametrize(
    ("net", "layer", "why"),
    [
        (CalledTwice(), "c1", r"'c2' \(Conv2d\): it is called at 2 places"),
        (SharedConsumer(), "a", r"'fc' \(Linear\): it is called at 2 places"),
        (TwoNames(), "fc1", r"'fc2' \(Linear\): it is also registered as \['alias'\]"),
        (Tied(), "fc1", r"'fc2' \(Linear\): it shares parameters with \['fc3'\]"),
    ],
)
def test_shared_modules_are_refused_by_name(net, layer, why):
    with pytest.raises(ValueError, match=why):
        compress(net.eval(), "magnitude", 1.0, layers=[layer])
    skipped: dict[str, str] = {}
    assert layer not in hidden_layers(net, skipped=skipped)
    assert re.search(why, skipped[layer])


class Positions(nn.Module):
    """A conv whose map is flattened from dim 2: a Linear over positions."""

    def __init__(self, flatten) -> None:
        super().__init__()
        self.conv, self.fc, self.flatten = nn.Conv2d(3, 4, 3), nn.Linear(16, 4), flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4, 4) outputs for (N, 3, 6, 6) inputs."""
        return self.fc(self.flatten(torch.relu(self.conv(x))))


@pytest.mark.parametrize(
    "flatten",
    [
        lambda h: torch.flatten(h, 2),
        lambda h: h.flatten(start_dim=2),
        lambda h: h.view(h.size(0), h.size(1), -1),
        lambda h: h.reshape((h.shape[0], 4, 16)),
    ],
)
def test_flatten_over_positions_is_refused(flatten):
    net = Positions(flatten).eval()
    with pytest.raises(ValueError, match=r"'conv'.*does not keep its neurons"):
        compress(net, "magnitude", 0.5, layers=["conv"])


@pytest.mark.parametrize(
    "flatten",
    [
        nn.Flatten(),
        lambda h: torch.flatten(h, 1),
        lambda h: h.flatten(1),
        lambda h: h.view(h.size(0), -1),
        lambda h: h.reshape(-1, 64),
    ],
)
def test_channel_flattens_are_accepted(flatten):
    net = Positions(flatten).eval()
    net.fc = nn.Linear(64, 2)
    small = compress(net, "magnitude", 1.0, layers=["conv"])
    x = torch.randn(3, 3, 6, 6)
    assert torch.allclose(small(x), net(x), atol=1e-6)


@pytest.mark.parametrize("where", ["0", "1", "3"])
@pytest.mark.parametrize(
    "hook",
    [
        lambda m: m.register_forward_hook(lambda *a: None),
        lambda m: m.register_forward_pre_hook(lambda *a: None),
        lambda m: m.register_full_backward_hook(lambda *a: None),
    ],
)
def test_hooks_on_rebuilt_modules_are_refused(where, hook):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3)
    ).eval()
    hook(net.get_submodule(where))
    with pytest.raises(ValueError, match=rf"'{where}' \(\w+\) has \w+hooks registered"):
        compress(net, "magnitude", 0.5, layers=["0"])


def test_pruned_model_says_to_remove_the_pruning():
    net = mlp(3)
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    with pytest.raises(ValueError, match=r"'0'.*prune\.remove"):
        compress(net, "magnitude", 0.5)
    prune.remove(net[0], "weight")
    assert compress(net, "magnitude", 0.5)[0].out_features == 6


def test_model_on_the_meta_device_is_refused():
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))
    with pytest.raises(ValueError, match=r"weight of '0' is on the meta device"):
        compress(net, "magnitude", 0.5)


def test_parametrised_weights_are_refused():
    net = mlp(3)
    parametrize.register_parametrization(net[2], "weight", nn.Identity())
    with pytest.raises(ValueError, match=r"'2' has parametrised weights"):
        compress(net, "magnitude", 0.5, layers=["0"])


# --------------------------------------------------------------------------- #
# Arguments: clear errors naming the argument, never a raw one
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("pairs", [0, -1, 2.5, True])
def test_thinet_pairs_must_be_a_positive_int(pairs):
    net, x = mlp(3), torch.randn(30, 5)
    with pytest.raises((TypeError, ValueError), match="pairs"):
        thinet(net, "0", 0.5, data=x, pairs=pairs)
    with pytest.raises((TypeError, ValueError), match="pairs"):
        compress(net, "thinet", 0.5, data=x, pairs=pairs)


@pytest.mark.parametrize(
    ("seed", "error"),
    [(-1, ValueError), (1.5, TypeError), ("0", TypeError), (None, TypeError)],
)
@pytest.mark.parametrize("method", ["random", "tropnnc", "thinet"])
def test_seed_must_be_a_non_negative_int(method, seed, error):
    net, x = mlp(3), torch.randn(30, 5)
    with pytest.raises(error, match="seed"):
        compress(net, method, 0.5, data=x, seed=seed)
    with pytest.raises(error, match="seed"):
        METHODS[method](net, "0", 0.5, data=x, seed=seed)


def test_numpy_seed_is_accepted():
    net = mlp(3)
    a = compress(net, "random", 0.5, seed=np.int64(3))
    assert torch.equal(a[0].weight, compress(net, "random", 0.5, seed=3)[0].weight)


@pytest.mark.parametrize("n_init", [0, -2, 1.0])
def test_n_init_must_be_a_positive_int(n_init):
    with pytest.raises((TypeError, ValueError), match="n_init"):
        compress(mlp(3), "tropnnc", 0.5, n_init=n_init)
    with pytest.raises((TypeError, ValueError), match="n_init"):
        tropnnc(mlp(3), "0", 0.5, n_init=n_init)


@pytest.mark.parametrize(
    ("ridge", "error"),
    [("1e-3", TypeError), (None, TypeError), (-1.0, ValueError), (np.nan, ValueError)],
)
def test_ridge_must_be_a_non_negative_number(ridge, error):
    x = torch.randn(30, 5)
    with pytest.raises(error, match="ridge"):
        compress(mlp(3), "magnitude", 0.5, data=x, refit=True, ridge=ridge)


@pytest.mark.parametrize(
    ("keep", "expected"),
    [(np.float32(0.5), 6), (np.float64(0.25), 3), (torch.tensor(0.5), 6), (1, 12)],
)
def test_keep_as_numpy_or_tensor_scalar(keep, expected):
    assert check_keep(keep) == float(keep)
    assert n_keep(12, keep) == expected
    assert compress(mlp(3), "magnitude", keep)[0].out_features == expected


@pytest.mark.parametrize("keep", [torch.tensor([0.5]), np.array([0.5]), "0.5", 1j])
def test_keep_of_other_types_is_refused(keep):
    with pytest.raises(TypeError, match="keep must be a number"):
        compress(mlp(3), "magnitude", keep)


def test_empty_layers_says_nothing_would_be_compressed():
    with pytest.raises(ValueError, match="nothing would be compressed"):
        compress(mlp(3), "magnitude", 0.5, layers=[])
    with pytest.raises(TypeError, match="layers must be a list"):
        compress(mlp(3), "magnitude", 0.5, layers=3)


def batches_of(*xs: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A loader-like list of (inputs, labels) batches."""
    return [(x, torch.zeros(len(x), dtype=torch.long)) for x in xs]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (batches_of(torch.randn(8, 5), torch.randn(8, 6)), r"batch 1 .*shape \(6,\)"),
        (
            batches_of(torch.randn(8, 5), torch.randn(8, 5).double()),
            r"batch 1 has dtype torch.float64",
        ),
        (
            batches_of(torch.randn(8, 5), torch.tensor([[0.0] * 5, [np.nan] * 5])),
            r"NaN.*batch 1",
        ),
        (batches_of(torch.randn(8, 5), torch.randint(0, 2, (8, 5))), r"dtype.*batch 1"),
        ([torch.randn(8, 5), "x"], r"got str \(batch 1\)"),
        ({"x": torch.randn(8, 5)}, r"got dict"),
    ],
)
def test_every_batch_is_checked(data, match):
    with pytest.raises((TypeError, ValueError), match=match):
        compress(mlp(3), "thinet", 0.5, data=data)
    with pytest.raises((TypeError, ValueError), match=match):
        compress(mlp(3), "magnitude", 0.5, data=data, refit=True)


@pytest.mark.parametrize("dtype", [torch.long, torch.float32])
def test_one_hot_labels_are_read_as_labels(dtype):
    torch.manual_seed(1)
    x = torch.randn(40, 5)
    onehot = nn.functional.one_hot(torch.randint(0, 3, (40,)), 3).to(dtype)
    small = compress(mlp(3), "thinet", 0.5, data=(x, onehot))
    assert torch.equal(
        small[0].weight, compress(mlp(3), "thinet", 0.5, data=x)[0].weight
    )


def bn_net() -> nn.Sequential:
    """A seeded conv -> BatchNorm -> ReLU -> conv network on (N, 3, 8, 8) inputs."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 2, 3, padding=1),
        nn.Flatten(),
        nn.Linear(128, 2),
    ).eval()


@pytest.mark.parametrize("shape", [(4, 8, 8), (3, 8), (3, 9, 9), (0, 8, 8), "3x8x8"])
def test_input_shape_must_fit_the_model(shape):
    with pytest.raises((TypeError, ValueError), match="input_shape"):
        compress(bn_net(), "magnitude", 0.5, layers=["0"], correct="stats",
                 input_shape=shape)  # fmt: skip
    small = compress(bn_net(), "magnitude", 0.5, correct="stats", input_shape=(3, 8, 8))
    assert small[0].out_channels == 3


@pytest.mark.parametrize(
    ("stats", "match"),
    [
        ([1, 2], r"stats must be a dict"),
        ({"nope": ([0.0], [1.0])}, r"'nope', which is not a Linear or Conv2d"),
        ({"0": [0.0] * 12}, r"stats\['0'\] must be a \(mean, std\) pair"),
        ({"0": ([0.0] * 11, [1.0] * 11)}, r"12 means and 12 stds"),
        ({"0": (["a"] * 12, [1.0] * 12)}, r"stats\['0'\] mean"),
        ({"0": ([0.0] * 12, [-1.0] * 12)}, r"stds >= 0"),
    ],
)
def test_stats_of_the_wrong_form_are_refused(stats, match):
    with pytest.raises((TypeError, ValueError), match=match):
        compress(mlp(3), "magnitude", 0.5, correct="stats", stats=stats)


@pytest.mark.parametrize(
    "text", ["", "{not json", "[1, 2]", '{"stats": {"0": [[0.0]]}}', '{"stats": 3}']
)
def test_malformed_statistics_file_is_named(tmp_path, text):
    path = tmp_path / "unit_stats.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="unit_stats.json"):
        load_unit_stats(path)


def test_record_unit_stats_checks_the_dtype():
    with pytest.raises(TypeError, match="float64.*float32"):
        record_unit_stats(mlp(3), ["0"], torch.randn(20, 5).double())
    stats = record_unit_stats(mlp(3), "0", torch.randn(20, 5))
    assert list(stats) == ["0"] and len(stats["0"][0]) == 12


# --------------------------------------------------------------------------- #
# Metrics: each module's own mode restored; clear errors
# --------------------------------------------------------------------------- #


def frozen_bn() -> nn.Sequential:
    """A training model whose BatchNorm is frozen (eval) on purpose."""
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    net.train()
    net[1].eval()
    return net


@pytest.mark.parametrize(
    "measure",
    [
        lambda net: count_flops(net, (3, 4)),
        lambda net: measure_latency(net, (3, 4), repeats=2, warmup=0),
        lambda net: compare_latency([net], (3, 4), repeats=2, rounds=1),
        lambda net: evaluate(
            net, (torch.randn(6, 4), torch.zeros(6, dtype=torch.long))
        ),
    ],
)
def test_measuring_keeps_each_modules_own_mode(measure):
    net = frozen_bn()
    measure(net)
    assert net.training and net[0].training and not net[1].training


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda n: compare_latency([n], (3, 4), threads=0), ValueError, "threads"),
        (lambda n: measure_latency(n, (3, 4), threads=-1), ValueError, "threads"),
        (lambda n: measure_latency(n, (3, 4), threads=1.5), TypeError, "threads"),
        (lambda n: compare_latency((m for m in [n]), (3, 4)), TypeError, "list or"),
        (lambda n: compare_latency(n, (3, 4)), TypeError, "list or tuple"),
        (lambda n: compare_latency([n, "x"], (3, 4)), TypeError, "torch.nn.Module"),
        (lambda n: compare_latency([n], (3, 4), rounds=0), ValueError, "rounds"),
        (lambda n: measure_latency(n, (3, 4), warmup=-1), ValueError, "warmup"),
        (lambda n: summarize(n, torch.zeros(0, 4)), ValueError, "at least one input"),
        (lambda n: count_flops(n, torch.zeros(0, 4)), ValueError, "at least one input"),
    ],
)
def test_metrics_arguments_are_checked(call, error, match):
    with pytest.raises(error, match=match):
        call(frozen_bn().eval())


# --------------------------------------------------------------------------- #
# Checkpoints, data folder, models: the file or the argument named
# --------------------------------------------------------------------------- #


@pytest.fixture
def saved_net(tmp_path):
    """A registered tiny recipe with its checkpoint saved in ``tmp_path``."""

    def fit_it(net: nn.Module) -> dict:
        history = {"epoch": [], "train_loss": []}
        return {
            "history": history,
            "data": "none",
            "seed": 0,
            "accuracy": 0.5,
            "config": {},
        }

    build = lambda: nn.Sequential(nn.Linear(4, 3))  # noqa: E731
    train.register(train.Recipe("hardening_net", build, fit_it, "a test network"))
    torch.manual_seed(0)
    train.load_or_train("hardening_net", directory=tmp_path)
    yield tmp_path / "hardening_net.pt"
    train.RECIPES.pop("hardening_net")


def rehash(path) -> None:
    """Record the checkpoint's current hash in its manifest (a careless edit)."""
    manifest_path = path.parent / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[path.stem]["sha256"] = train.sha256(path)
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "cannot be read"),
        (lambda p: p.write_bytes(b""), "cannot be read"),
        (lambda p: torch.save([1, 2], p), "not a state dict"),
        (
            lambda p: torch.save(nn.Linear(5, 3).state_dict(), p),
            "does not fit the Sequential",
        ),
        (
            lambda p: torch.save({"0.weight": torch.full((3, 4), np.nan)}, p),
            r"NaN or infinite values in \['0.weight'\]",
        ),
    ],
)
def test_damaged_checkpoint_with_a_matching_hash_names_the_file(
    saved_net, damage, match
):
    damage(saved_net)
    rehash(saved_net)
    with pytest.raises(ValueError, match=rf"hardening_net\.pt.*{match}"):
        train.load_or_train("hardening_net", directory=saved_net.parent)


def test_book_data_naming_a_file_is_refused(tmp_path, monkeypatch):
    afile = tmp_path / "data.txt"
    afile.write_text("")
    monkeypatch.setenv("BOOK_DATA", str(afile))
    with pytest.raises(ValueError, match="BOOK_DATA=.*names a file"):
        data.data_root()
    with pytest.raises(ValueError, match="names a file"):
        data.load_tensors("mnist", limit=5, verbose=False)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"limit": 2.5}, TypeError),
        ({"limit": "5"}, TypeError),
        ({"limit": -1}, ValueError),
        ({"seed": -1}, ValueError),
    ],
)
def test_load_tensors_checks_limit_and_seed(tmp_path, kwargs, error):
    with pytest.raises(error, match="limit|seed"):
        data.load_tensors("mnist", root=tmp_path, verbose=False, **kwargs)


@pytest.mark.parametrize(
    ("width", "error"),
    [
        (float("inf"), ValueError),
        ("0.5", TypeError),
        (True, TypeError),
        (-1, ValueError),
    ],
)
def test_vgg_width_must_be_a_positive_number(width, error):
    with pytest.raises(error, match="width"):
        models.vgg_cifar(width)
    with pytest.raises(error, match="width"):
        models.pruned_a_fractions(width)
    assert models.vgg_cifar(np.float32(0.05)).features.conv1.out_channels == 3


def test_refit_value_is_checked_before_any_work():
    with pytest.raises(ValueError, match="refit must be False, True or 'bias'"):
        compress(mlp(3), "magnitude", 0.5, data=torch.randn(9, 5), refit="yes")


def test_numpy_pair_is_read_as_inputs_and_labels():
    x = torch.randn(40, 5)
    y = np.zeros(40, dtype=np.int64)
    small = compress(mlp(3), "thinet", 0.5, data=(x.numpy(), y))
    assert torch.equal(
        small[0].weight, compress(mlp(3), "thinet", 0.5, data=x)[0].weight
    )


def test_stats_of_layers_compressed_earlier_do_not_stop_the_next_layer():
    """Multi-layer correct='stats': each entry is checked against the input model."""
    from helpers.compress import record_unit_stats

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 12), nn.ReLU(), nn.Linear(12, 3)
    ).eval()
    x = torch.randn(200, 6)
    stats = record_unit_stats(net, ["0", "2"], x)
    small = compress(
        net, "tropnnc", 0.5, layers=["0", "2"], correct="stats", stats=stats
    )
    assert small[0].out_features == 10 and small[2].out_features == 6
    with pytest.raises(ValueError, match="must hold 20 means"):
        compress(
            net,
            "tropnnc",
            0.5,
            correct="stats",
            stats={"0": (stats["2"][0], stats["2"][1])},
        )
