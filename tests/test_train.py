"""Training helpers: modes, fit/evaluate, and the sha256 checkpoint manifest."""

import json

import pytest
import torch
from torch import nn

from helpers import train


def _blobs(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two well-separated Gaussian blobs."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 4, generator=g) + 3.0 * (2 * y[:, None].float() - 1)
    return x, y


def test_pick_and_banner(monkeypatch, capsys):
    """``pick`` returns the fast value only in fast mode and says what shrank."""
    monkeypatch.delenv("BOOK_FAST", raising=False)
    assert train.pick(10, 2, "epochs") == 10 and capsys.readouterr().out == ""
    monkeypatch.setenv("BOOK_FAST", "1")
    assert train.pick(10, 2, "epochs") == 2
    assert "[fast mode] epochs: 10 -> 2" in capsys.readouterr().out
    train.print_mode_banner()
    out = capsys.readouterr().out
    assert "FAST MODE" in out and "epochs: 10 -> 2" in out
    monkeypatch.setenv("BOOK_FAST", "0")
    monkeypatch.setenv("BOOK_RETRAIN", "1")
    assert not train.is_fast() and train.is_retrain()


def test_seed_everything_is_deterministic():
    """The same seed gives the same random numbers."""
    train.seed_everything(5)
    a = torch.randn(3)
    train.seed_everything(5)
    assert torch.equal(a, torch.randn(3))


def test_fit_learns_and_evaluate_agrees():
    """Training on separable data raises accuracy; evaluate matches a direct count."""
    x, y = _blobs()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    before = train.evaluate(net, (x, y))
    history = train.fit(net, (x, y), epochs=5, lr=1e-2, val=(x, y), progress=False)
    assert set(history) == {
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "epoch_time",
    }
    assert history["epoch"] == [1, 2, 3, 4, 5]
    after = train.evaluate(net, (x, y))
    assert after["loss"] < before["loss"] and after["accuracy"] > 0.95
    direct = float((net(x).argmax(1) == y).float().mean())
    assert after["accuracy"] == pytest.approx(direct)
    assert after["accuracy"] == pytest.approx(history["val_acc"][-1])


def test_fit_rejects_bad_arguments():
    """Clear errors for zero epochs, unknown optimizers and mismatched data."""
    x, y = _blobs(10)
    net = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(net, (x, y), epochs=0)
    with pytest.raises(ValueError, match="optimizer"):
        train.fit(net, (x, y), epochs=1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="items"):
        train.fit(net, (x, y[:5]), epochs=1)


def test_fit_keep_best_restores_the_best_validation_epoch():
    """keep_best ends on the weights of the first epoch of highest val accuracy."""
    x, y = _blobs(64)
    xv, yv = x[:16], 1 - y[:16]  # flipped labels: val accuracy falls as it learns
    states, tracked = [], []

    def track(model: nn.Module) -> dict[str, float]:
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        tracked.append(train.evaluate(model, (xv, yv))["accuracy"])
        return {"val_again": tracked[-1]}

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    history = train.fit(
        net,
        (x, y),
        val=(xv, yv),
        keep_best=True,
        epochs=6,
        lr=5e-2,
        progress=False,
        track=track,
    )
    assert history["val_again"] == pytest.approx(history["val_acc"])
    best = history["best_epoch"][0]
    assert history["val_acc"][best - 1] == max(history["val_acc"])
    assert best == 1 + history["val_acc"].index(max(history["val_acc"]))
    assert best < 6  # the last epoch is not the best here: keep_best must act
    for key, value in net.state_dict().items():
        assert torch.equal(value, states[best - 1][key]), key
    assert not net.training
    torch.manual_seed(0)
    last = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    plain = train.fit(last, (x, y), val=(xv, yv), epochs=6, lr=5e-2, progress=False)
    assert "best_epoch" not in plain and plain["val_acc"] == history["val_acc"]
    assert train.evaluate(last, (xv, yv))["accuracy"] == plain["val_acc"][-1]


def test_fit_keep_best_needs_validation_and_sane_sizes():
    """keep_best without val, a bad batch size or a negative decay are clear errors."""
    x, y = _blobs(10)
    net = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="keep_best=True needs validation"):
        train.fit(net, (x, y), epochs=1, keep_best=True)
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(net, (x, y), epochs=1, batch_size=0)
    with pytest.raises(TypeError, match="epochs"):
        train.fit(net, (x, y), epochs=2.0)
    with pytest.raises(ValueError, match="weight_decay"):
        train.fit(net, (x, y), epochs=1, weight_decay=-1e-4)
    with pytest.raises(ValueError, match="no training batches"):
        train.fit(net, [], epochs=1)


def test_shuffled_batches_are_seeded_whole_passes():
    """Each pass is a seeded permutation in slices; the seed fixes the order."""
    x = torch.arange(10.0)[:, None]
    y = torch.arange(10)
    batches = train.ShuffledBatches(x, y, batch_size=4, seed=3)
    assert len(batches) == 3
    first = [yb for _, yb in batches]
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(10))
    again = [yb for _, yb in train.ShuffledBatches(x, y, batch_size=4, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    second = torch.cat([yb for _, yb in batches])
    assert not torch.equal(second, torch.cat(first))  # a fresh order each pass
    assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in batches)
    with pytest.raises(ValueError, match="items"):
        train.ShuffledBatches(x, y[:3])


@pytest.fixture
def tiny_recipe():
    """Register a two-second recipe and remove it afterwards."""
    calls = []

    def build() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def fit_it(net: nn.Module) -> dict:
        calls.append(1)
        x, y = _blobs()
        history = train.fit(net, (x, y), epochs=2, lr=1e-2, seed=1, progress=False)
        return {
            "history": history,
            "data": "two Gaussian blobs",
            "seed": 1,
            "accuracy": train.accuracy(net, x, y),
            "config": {"epochs": 2},
        }

    train.register(train.Recipe("tiny_test_net", build, fit_it, "a test network"))
    yield calls
    train.RECIPES.pop("tiny_test_net")


def test_load_or_train_round_trip(tmp_path, tiny_recipe):
    """Missing: trained and recorded; present: loaded identically; corrupt: error."""
    torch.manual_seed(0)
    net, entry = train.load_or_train("tiny_test_net", directory=tmp_path)
    assert len(tiny_recipe) == 1
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert manifest["tiny_test_net"]["sha256"] == train.sha256(
        tmp_path / "tiny_test_net.pt"
    )
    assert (
        manifest["tiny_test_net"]["command"] == "python -m helpers.train tiny_test_net"
    )
    assert entry["history"]["epoch"] == [1, 2]
    again, _ = train.load_or_train("tiny_test_net", directory=tmp_path)
    assert len(tiny_recipe) == 1 and not again.training
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    (tmp_path / "tiny_test_net.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="does not match its manifest hash"):
        train.load_or_train("tiny_test_net", directory=tmp_path)
    train.load_or_train("tiny_test_net", retrain=True, directory=tmp_path)
    assert len(tiny_recipe) == 2


def test_unknown_recipe_and_incomplete_results(tmp_path):
    """Unknown names list the known ones; recipes must report their provenance."""
    with pytest.raises(KeyError, match="no checkpoint recipe"):
        train.get_recipe("no_such_net")
    train.register(train.Recipe("bad_test_net", lambda: nn.Linear(1, 1), lambda m: {}))
    try:
        with pytest.raises(ValueError, match="did not report"):
            train.train_and_save("bad_test_net", tmp_path)
    finally:
        train.RECIPES.pop("bad_test_net")


def test_shipped_checkpoints_match_the_manifest():
    """Every shipped checkpoint is listed, hash-verified, and within the size budget."""
    files = sorted(train.checkpoint_dir().glob("*.pt"))
    manifest = train.read_manifest()
    assert {f.stem for f in files} == set(manifest)
    total = 0
    for f in files:
        entry = manifest[f.stem]
        assert train.sha256(f) == entry["sha256"], f.name
        assert f.stat().st_size <= train.MAX_CHECKPOINT_BYTES, f.name
        assert {"command", "data", "seed", "accuracy", "history"} <= set(entry)
        total += f.stat().st_size
    assert total <= 25 * 1024 * 1024


def test_command_line_sees_every_recipe():
    """``python -m helpers.train --list`` lists exactly the registered recipes."""
    import subprocess
    import sys

    import helpers.recipes  # noqa: F401  (registers every recipe here too)

    out = subprocess.run(
        [sys.executable, "-m", "helpers.train", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert listed == {n for n in train.RECIPES if not n.endswith("_test_net")}


def test_augmented_batches_crop_flip_and_shuffle():
    """Crops are shifted copies of the padded image, flips mirror it, seeds repeat."""
    x = torch.rand(10, 2, 6, 6)
    y = torch.arange(10)
    plain = train.AugmentedBatches(x, y, batch_size=4, pad=0, flip=False, seed=3)
    assert len(plain) == 3
    seen = torch.cat([yb for _, yb in plain])
    assert sorted(seen.tolist()) == list(range(10))
    for xb, yb in plain:
        assert torch.equal(xb, x[yb])
    batches = train.AugmentedBatches(x, y, batch_size=10, pad=2, seed=3)
    ((xb, yb),) = list(batches)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for img, label in zip(xb, yb):
        windows = [
            padded[label, :, a : a + 6, b : b + 6] for a in range(5) for b in range(5)
        ]
        assert any(torch.equal(img, w) or torch.equal(img, w.flip(2)) for w in windows)
    again = train.AugmentedBatches(x, y, batch_size=10, pad=2, seed=3)
    assert torch.equal(next(iter(again))[0], xb)
    with pytest.raises(ValueError, match="images"):
        train.AugmentedBatches(x[:, 0], y)
    with pytest.raises(ValueError, match="batch_size"):
        train.AugmentedBatches(x, y, batch_size=0)


def test_fit_cosine_schedule_and_nesterov():
    """The cosine schedule ends at lr 0; Nesterov SGD learns; bad schedules fail."""
    x, y = _blobs()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    train.fit(
        net,
        (x, y),
        epochs=2,
        lr=0.05,
        optimizer="sgd_nesterov",
        schedule="cosine",
        progress=False,
    )
    assert train.accuracy(net, x, y) > 0.95
    frozen = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match="schedule"):
        train.fit(net, (x, y), epochs=1, schedule="linear")
    assert all(torch.equal(a, b) for a, b in zip(frozen, net.parameters()))


@pytest.fixture
def data_recipe(monkeypatch, tmp_path):
    """A one-step recipe that names its dataset, with a stub for the data's name."""
    calls, data = [], {"name": "Stub shipped data"}

    def fit_it(net: nn.Module) -> dict:
        calls.append(data["name"])
        x, y = _blobs(8)
        history = train.fit(net, (x, y), epochs=1, batch_size=8, progress=False)
        return {
            "history": history,
            "data": f"{data['name']}: 8 blobs",
            "data_source": data["name"],
            "seed": 0,
            "accuracy": train.accuracy(net, x, y),
            "config": {"epochs": 1},
        }

    monkeypatch.setattr(train, "current_data_name", lambda dataset: data["name"])
    monkeypatch.setattr(train, "user_checkpoint_dir", lambda: tmp_path / "user")
    train.register(
        train.Recipe(
            "data_test_net",
            lambda: nn.Linear(4, 2),
            fit_it,
            extra={"dataset": "cifar10"},
        )
    )
    yield calls, data
    train.RECIPES.pop("data_test_net")


def test_load_or_train_retrains_when_the_data_differ(tmp_path, data_recipe, capsys):
    """Other data than the shipped model saw: train into the user folder instead."""
    calls, data = data_recipe
    shipped = tmp_path / "shipped"
    train.load_or_train("data_test_net", retrain=False, directory=shipped)
    digest = train.sha256(shipped / "data_test_net.pt")
    train.load_or_train("data_test_net", retrain=False, directory=shipped)
    assert calls == ["Stub shipped data"]
    data["name"] = "Stub real data"
    capsys.readouterr()
    net, entry = train.load_or_train("data_test_net", retrain=False, directory=shipped)
    out = capsys.readouterr().out
    assert "trained on Stub shipped data, but the data now is Stub real data" in out
    assert calls == ["Stub shipped data", "Stub real data"]
    assert entry["data_source"] == "Stub real data"
    assert train.sha256(shipped / "data_test_net.pt") == digest  # never overwritten
    local = tmp_path / "user" / "data_test_net.pt"
    assert train.sha256(local) == entry["sha256"]
    again, _ = train.load_or_train("data_test_net", retrain=False, directory=shipped)
    assert len(calls) == 2 and torch.equal(again.weight, net.weight)
    data["name"] = "Stub shipped data"
    _, back = train.load_or_train("data_test_net", retrain=False, directory=shipped)
    assert len(calls) == 2 and back["sha256"] == digest
    data["name"] = "Stub third data"  # the user folder's model is stale: retrain there
    _, third = train.load_or_train("data_test_net", retrain=False, directory=shipped)
    assert calls[-1] == "Stub third data" and third["data_source"] == "Stub third data"
    assert train.sha256(shipped / "data_test_net.pt") == digest


def test_recorded_data_name_falls_back_to_the_description():
    assert train.recorded_data_name({"data": "MNIST: 60,000 training"}) == "MNIST"
    assert train.recorded_data_name({"data": "x: y", "data_source": "Z"}) == "Z"


def test_checkpoints_name_their_training_data_in_full_once(
    tmp_path, data_recipe, capsys, monkeypatch
):
    """A chapter loading several checkpoints of one dataset describes it once."""
    from helpers import data as data_module

    monkeypatch.setattr(data_module, "_PRINTED", {})
    shipped = tmp_path / "shipped"
    train.load_or_train("data_test_net", retrain=False, directory=shipped)  # trains
    capsys.readouterr()
    for _ in range(2):
        train.load_or_train("data_test_net", retrain=False, directory=shipped)
    first, second = capsys.readouterr().out.strip().splitlines()
    assert "loaded (trained on Stub shipped data: 8 blobs;" in first
    assert "loaded (trained on Stub shipped data;" in second


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: e.pop("sha256"), "entry 'tiny_test_net' has no key 'sha256'"),
        (lambda e: e.update(accuracy="0.9"), "key 'accuracy' must be int or float"),
        (lambda e: e.update(seed=True), "key 'seed' must be int"),
        (lambda e: e.update(history=[1, 2]), "key 'history' must be dict"),
        (lambda e: e.update(sha256="abc"), "key 'sha256' must be 64 lowercase hex"),
        (lambda e: e.update(file="other.pt"), "key 'file' must be 'tiny_test_net.pt'"),
    ],
)
def test_malformed_manifest_entry_names_the_entry_and_key(
    tmp_path, tiny_recipe, edit, message
):
    """A hand-edited manifest entry fails with its name and key, not a KeyError."""
    train.load_or_train("tiny_test_net", directory=tmp_path)
    path = tmp_path / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    edit(manifest["tiny_test_net"])
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=message):
        train.load_or_train("tiny_test_net", directory=tmp_path)


def test_manifest_that_is_not_an_object_or_not_json_names_the_file(tmp_path):
    """Broken manifest files are named in the error."""
    path = tmp_path / "MANIFEST.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must map checkpoint names"):
        train.read_manifest(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="MANIFEST.json is not valid JSON"):
        train.read_manifest(tmp_path)
    path.write_text(json.dumps({"x": 3}))
    with pytest.raises(ValueError, match="entry 'x' must be a JSON object"):
        train.check_entry("x", train.read_manifest(tmp_path)["x"])


def test_shipped_manifest_entries_are_well_formed():
    """Every shipped entry passes the same check the loader applies."""
    for name, entry in train.read_manifest().items():
        train.check_entry(name, entry)


def test_checkpoint_dir_resolution(tmp_path, monkeypatch):
    """$BOOK_CHECKPOINTS, else the checkout's, else an installed copy, else a cache."""
    monkeypatch.delenv("BOOK_CHECKPOINTS", raising=False)
    assert train.checkpoint_dir() == train.CHECKOUT_CHECKPOINTS  # running from here
    monkeypatch.setenv("BOOK_CHECKPOINTS", str(tmp_path / "mine"))
    assert train.checkpoint_dir() == tmp_path / "mine"
    monkeypatch.delenv("BOOK_CHECKPOINTS")
    installed = tmp_path / "share" / "checkpoints"
    monkeypatch.setattr(train, "CHECKOUT_CHECKPOINTS", tmp_path / "no_checkout")
    monkeypatch.setattr(train, "INSTALLED_CHECKPOINTS", installed)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "tropical-nn-book" / "checkpoints"
    assert train.checkpoint_dir() == cache == train.user_cache_dir()
    installed.mkdir(parents=True)
    (installed / train.MANIFEST_NAME).write_text("{}")
    assert train.checkpoint_dir() == installed


def test_read_only_shipped_folder_trains_into_the_cache(
    tmp_path, monkeypatch, tiny_recipe
):
    """A missing checkpoint of a read-only installed folder is trained in the cache."""
    installed = tmp_path / "installed"
    installed.mkdir()
    (installed / train.MANIFEST_NAME).write_text("{}")
    monkeypatch.delenv("BOOK_CHECKPOINTS", raising=False)
    monkeypatch.setattr(train, "CHECKOUT_CHECKPOINTS", tmp_path / "no_checkout")
    monkeypatch.setattr(train, "INSTALLED_CHECKPOINTS", installed)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(train, "_writable", lambda d: d != installed)
    train.load_or_train("tiny_test_net")
    assert (train.user_cache_dir() / "tiny_test_net.pt").exists()
    assert not (installed / "tiny_test_net.pt").exists()
    train.load_or_train("tiny_test_net")  # found in the cache, not trained again
    assert len(tiny_recipe) == 1


def test_describe_run_says_which_data_ran_and_how_much():
    from types import SimpleNamespace

    from helpers.train import describe_run

    source = SimpleNamespace(
        name="MNIST", n_train=100, n_test=20, describe=lambda: "MNIST (test)"
    )
    history = {"val_acc": [0.5, 0.75]}
    full = describe_run(history, source, 100, 20, 3, {"lr": 0.1})
    assert full["data"] == "MNIST (test)" and full["accuracy"] == 0.75
    assert full["data_source"] == "MNIST" and full["seed"] == 3
    assert full["config"] == {"lr": 0.1, "val": "test split"}
    drawn = describe_run(history, source, 50, 20, 3, {})
    assert drawn["data"].endswith("; 50 training and 20 test images drawn")


def _resume_net() -> nn.Module:
    """A small seeded conv net with BatchNorm and dropout (state beyond weights)."""
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(144, 3),
    )


class _Stop(Exception):
    """Raised by a tracker to stop a run part way (a simulated kill)."""


def test_fit_resumes_a_stopped_run_with_the_same_result(tmp_path):
    """A run killed after epoch 1 and resumed equals the uninterrupted run."""
    torch.manual_seed(0)
    x, y = torch.randn(96, 3, 8, 8), torch.randint(0, 3, (96,))
    kw = dict(
        epochs=3, lr=0.05, optimizer="sgd_nesterov", schedule="cosine", progress=False
    )

    def batches():
        return train.AugmentedBatches(x, y, batch_size=16, seed=0)

    straight = _resume_net()
    h1 = train.fit(straight, batches(), **kw)
    state, calls = tmp_path / "state.pt", []

    def kill_in_epoch_2(model):
        calls.append(1)
        if len(calls) == 2:
            raise _Stop  # epoch 2 finished but its state was not yet written
        return {}

    with pytest.raises(_Stop):
        train.fit(_resume_net(), batches(), resume=state, track=kill_in_epoch_2, **kw)
    assert state.exists()
    resumed = _resume_net()
    h2 = train.fit(resumed, batches(), resume=state, **kw)
    assert h2["epoch"] == [1, 2, 3]
    assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=1e-5)
    assert len(h2["epoch_time"]) == 3 and all(t > 0 for t in h2["epoch_time"])
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
    with pytest.raises(ValueError, match="not 5"):
        train.fit(_resume_net(), batches(), resume=state, **{**kw, "epochs": 5})


def test_recalibrate_batchnorm_measures_the_models_own_statistics():
    """After recalibration the running mean is the batch mean of the images."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(144, 2),
    ).eval()
    x = torch.randn(300, 3, 8, 8) * 2 + 1
    out = train.recalibrate_batchnorm(net, x, batch_size=60)  # equal batches
    assert out is net and not any(m.training for m in net.modules())
    pre = net[0](x)
    assert torch.allclose(net[1].running_mean, pre.mean(dim=(0, 2, 3)), atol=1e-4)
    assert torch.allclose(net[1].running_var, pre.var(dim=(0, 2, 3)), rtol=1e-2)
    assert net[1].momentum == 0.1
    with pytest.raises(ValueError, match="no BatchNorm"):
        train.recalibrate_batchnorm(nn.Linear(2, 2), torch.randn(4, 2))


def test_fine_tune_recovers_a_damaged_model_with_the_protocol():
    """The protocol trains every epoch with SGD + cosine and reports each epoch."""
    x, y = _blobs()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    train.fit(net, (x, y), epochs=5, lr=1e-2, progress=False)
    with torch.no_grad():
        net[0].weight.mul_(-1)  # damage it
    before = train.evaluate(net, (x, y))["accuracy"]
    history = train.fine_tune(net, (x, y), epochs=3, val=(x, y), lr=0.05)
    assert history["epoch"] == [1, 2, 3] and len(history["val_acc"]) == 3
    assert history["val_acc"][-1] > max(before, 0.9)
    assert train.FINE_TUNE["optimizer"] == "sgd_nesterov"
