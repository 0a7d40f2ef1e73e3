"""TropNNC's three gauges on the grid of chapter 8's gauge table.

48 settings: the gauges ``unit``, ``raw`` and ``generator`` x LeNet-300-100 and
LeNet-5 (the shipped MNIST checkpoints) x two layer choices (``fc2`` alone, the
layer feeding the logits, and ``fc1+fc2``, fc1 then fc2 as ``compress`` does) x
keeping 50, 25, 10 and 5 % of the neurons, without fine-tuning. k-means depends
on its seed (at 5 % one seed can move the accuracy by several points), so every
setting runs with ``--seeds`` seeds; the CSV keeps one row per seed, and the
summary compares the gauges on the mean over seeds: which gauge is best in each
of the 16 (network, layers, keep) rows, and how often and by how much the unit
gauge beats each other one. Chapter 8 reads ``results/gauges.csv``.

Run from the repository root::

    python benchmarks/gauges.py --csv results/gauges.csv   # 4-8 minutes on one core
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

import helpers  # noqa: F401  (must precede torchvision)
from helpers.compress import GAUGES, compress
from helpers.data import load_tensors
from helpers.recipes import load_or_train

from common import accuracy, provenance, write_csv

NETWORKS = {"lenet300_mnist": "LeNet-300-100", "lenet5_mnist": "LeNet-5"}
LAYERS = {"fc2": ["fc2"], "fc1+fc2": ["fc1", "fc2"]}
KEEPS = (0.5, 0.25, 0.1, 0.05)


def benchmark(test_size: int, seed: int, seeds: int) -> pd.DataFrame:
    """One row per (network, layers, keep, gauge, seed): the test accuracy (%)."""
    x, y, source = load_tensors("mnist", train=False, limit=test_size, seed=seed)
    rows = []
    for checkpoint, network in NETWORKS.items():
        net, _ = load_or_train(checkpoint)
        base = accuracy(net, x, y)
        for layers, names in LAYERS.items():
            for keep in KEEPS:
                for gauge in GAUGES:
                    for s in range(seed, seed + seeds):
                        small = compress(
                            net, "tropnnc", keep, layers=names, gauge=gauge, seed=s
                        )
                        rows.append(
                            {
                                "dataset": source.name,
                                "network": network,
                                "layers": layers,
                                "keep": keep,
                                "gauge": gauge,
                                "seed": s,
                                "accuracy": accuracy(small, x, y),
                                "widths": "x".join(
                                    str(getattr(small, n).out_features) for n in names
                                ),
                                "uncompressed": base,
                                "test_images": len(y),
                            }
                        )
            print(f"  done: {network} {layers}", flush=True)
    return pd.DataFrame(rows)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy over seeds: rows (network, layers, keep), a column per gauge."""
    wide = df.pivot_table(
        index=["network", "layers", "keep"],
        columns="gauge",
        values="accuracy",
        aggfunc="mean",
        sort=False,
    )[list(GAUGES)]
    wide["best"] = wide[list(GAUGES)].idxmax(axis=1)
    return wide


def print_summary(df: pd.DataFrame) -> None:
    """The table of means, the best gauge per row, and the pairwise tallies."""
    wide = summarize(df)
    n_seeds = df["seed"].nunique()
    print(f"\n=== test accuracy (%), mean over {n_seeds} seeds ===")
    print(wide.to_string(float_format=lambda v: f"{v:6.2f}"))
    print(f"\nbest gauge per row: {wide['best'].value_counts().to_dict()}")
    for other in GAUGES[1:]:
        diff = wide["unit"] - wide[other]
        print(
            f"unit beats {other} in {int((diff > 0).sum())} of {len(wide)} rows; "
            f"mean difference {diff.mean():+.2f} points"
        )
    spread = df.groupby(["network", "layers", "keep", "gauge"])["accuracy"].agg(
        lambda a: a.max() - a.min()
    )
    print(f"mean spread over seeds (max - min): {spread.mean():.2f} points")


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-size", type=int, default=2000, help="test images")
    parser.add_argument("--seed", type=int, default=0, help="first seed (and data)")
    parser.add_argument("--seeds", type=int, default=5, help="k-means seeds")
    parser.add_argument("--csv", help="write every run, with its provenance, here")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    df = benchmark(args.test_size, args.seed, args.seeds)
    print_summary(df)
    if args.csv:
        meta = provenance(args, time.perf_counter() - start, list(df["dataset"]))
        write_csv(df, Path(args.csv), meta)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
