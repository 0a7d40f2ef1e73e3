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
    assert set(history) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"}
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
    files = sorted(train.CHECKPOINT_DIR.glob("*.pt"))
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

    train._import_recipes()
    out = subprocess.run(
        [sys.executable, "-m", "helpers.train", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert listed == {n for n in train.RECIPES if not n.endswith("_test_net")}


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
