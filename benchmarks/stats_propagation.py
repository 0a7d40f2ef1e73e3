"""Does propagating Gaussian moments make the statistics correction safe and exact?

The statistics correction (``correct="stats"``) predicts the mean shift that
merging ReLU units causes at the consumer and moves the consumer's bias by it,
data-free: it reads the stored statistics as they are, ignores max-pooling and
moves the bias by the full prediction. The propagated version
(``correct="stats-propagated"``, closed forms in :mod:`helpers.compress.moments`)
models the max-pool before the consumer, predicts each layer's statistics
through the layers compressed before it, shrinks the move by the model's own
error on the original network and, by default (``repair="unit"``), restores
merged units' spread.

For every setting: accuracy of plain TropNNC, ``+stored`` (``correct="stats"``),
``+stats`` (propagated, ``repair=False``), ``+unit`` (propagated with the
default unit repair), ``+repair`` (propagated, consumer repair) and ``+bias``
(the data-driven bias refit, a reference that reads images).
Settings: each hidden layer alone at 50, 25 and 10 %; the first ``i`` layers
together at 50 % (layer after layer, ``i >= 2``); all layers at 50 and 25 %;
LeNet fc1+fc2 at 50, 25 and 10 %. Then, per VGG convolution at 50 %, the bias
move that each correction makes against the one the bias refit makes, per
consumer unit: least-squares slope (measured ~ slope x predicted) and
correlation.

Run from the repository root::

    python benchmarks/stats_propagation.py                   # every setting
    python benchmarks/stats_propagation.py --quick           # a few, 500 images
    python benchmarks/stats_propagation.py --csv results/stats_propagation.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

import helpers  # noqa: F401  (must precede torchvision)
from helpers.compress import (
    compress,
    compress_with_plans,
    hidden_layers,
    load_unit_stats,
)
from helpers.compress.layers import as_numpy
from helpers.data import load_tensors, load_vgg_data
from helpers.recipes import load_or_train
from helpers.train import checkpoint_dir, seed_everything

from common import SuffixEvaluator, accuracy, provenance, write_csv

VGG = "vgg_cifar_w025"
LENETS = {
    "lenet5_mnist": "mnist",
    "lenet300_mnist": "mnist",
    "lenet5_fashion": "fashion_mnist",
    "lenet300_fashion": "fashion_mnist",
}
#: Variant -> compress() options (``+bias`` also gets the calibration images).
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "+stored": {"correct": "stats"},
    "+stats": {"correct": "stats-propagated", "repair": False},
    "+unit": {"correct": "stats-propagated", "repair": "unit"},
    "+repair": {"correct": "stats-propagated", "repair": "consumer"},
    "+bias": {"refit": "bias"},
}
#: The variants run (``--variants``); the others are reported as NaN.
ACTIVE = set(VARIANTS)
#: A correction "hurts" where it is worse than plain by more than this (points).
TOLERANCE = 0.5
SINGLE_KEEPS = (0.5, 0.25, 0.1)


def lenet_stats(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The statistics recorded with LeNet checkpoint ``name``, checked by its hash."""
    folder = checkpoint_dir()
    return load_unit_stats(folder / f"{name}.stats.json", folder / f"{name}.pt")


def settings_for(layers: list[str], lenet: bool, quick: bool) -> list[tuple]:
    """(kind, layers, keep) of every setting on a model with these hidden layers."""
    out = [("single", [layer], k) for layer in layers for k in SINGLE_KEEPS]
    out += [("prefix", layers[:i], 0.5) for i in range(2, len(layers))]
    out += [("all", layers, k) for k in (0.5, 0.25)]
    if lenet:
        out += [("fc1+fc2", ["fc1", "fc2"], k) for k in SINGLE_KEEPS]
    if quick:
        out = [s for s in out if s[0] != "single" or s[2] != 0.25]
        out = [s for s in out if s[0] != "prefix" or len(s[1]) % 4 == 2]
    return out


def run_setting(
    net: nn.Module,
    layers: list[str],
    keep: float,
    test: Any,
    calib: torch.Tensor,
    options: dict[str, Any],
    seed: int,
) -> dict[str, float]:
    """Accuracy (%) of each variant for one setting."""
    row = {}
    for variant, extra in VARIANTS.items():
        if variant not in ACTIVE:
            row[variant] = float("nan")
            continue
        opts = {**extra, **(options if "correct" in extra else {})}
        data = calib if variant == "+bias" else None
        small = compress(
            net, "tropnnc", keep, layers=layers, data=data, seed=seed, **opts
        )
        row[variant] = test(small)
    return row


def model_part(
    name: str,
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    calib: torch.Tensor,
    options: dict[str, Any],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Rows of every setting on one model."""
    layers = hidden_layers(net)
    vgg = name == VGG
    full = (lambda m: accuracy(m, x, y)) if not vgg else None
    base = accuracy(net, x, y)
    rows = []
    for kind, chosen, keep in settings_for(layers, not vgg, args.quick):
        picked = kind == "single" and chosen[0].split(".")[-1] in args.vgg_layers
        if vgg and args.vgg_layers and kind in ("single", "prefix") and not picked:
            continue
        if vgg:  # reuse the unchanged prefix of the network
            first = chosen[0]
            test = (
                SuffixEvaluator(net, first, x, y)
                if first.startswith("features")
                else (lambda m: accuracy(m, x, y))
            )
        else:
            test = full
        start = time.perf_counter()
        row = run_setting(net, chosen, keep, test, calib, options, args.seed)
        label = chosen[0] if kind == "single" else f"{kind} ({len(chosen)})"
        rows.append(
            {
                "model": name,
                "setting": kind,
                "layers": label,
                "keep": keep,
                "uncompressed": base,
                **row,
            }
        )
        print(
            f"  {name} {label} {keep:.0%}: "
            + ", ".join(f"{v} {row[v]:.2f}" for v in VARIANTS)
            + f"  ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    return rows


def bias_move(plan: Any, plain: Any) -> np.ndarray:
    """How far a corrected plan moved the consumer's bias, per consumer unit."""
    after = as_numpy(plan.consumer_bias)
    before = (
        np.zeros_like(after)
        if plain.consumer_bias is None
        else as_numpy(plain.consumer_bias)
    )
    return after - before


def fit_line(predicted: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    """Least-squares slope through 0 (measured ~ slope x predicted) and correlation."""
    slope = float(predicted @ measured / max(predicted @ predicted, 1e-300))
    if predicted.std() == 0 or measured.std() == 0:
        return slope, float("nan")
    return slope, float(np.corrcoef(predicted, measured)[0, 1])


def shift_part(
    net: nn.Module, calib: torch.Tensor, options: dict[str, Any], seed: int, keep=0.5
) -> pd.DataFrame:
    """Per VGG conv at ``keep``: bias moves of each correction against the refit's."""
    rows = []
    for layer in [n for n in hidden_layers(net) if n.startswith("features")]:
        plans = {
            v: compress_with_plans(
                net, "tropnnc", keep, layers=[layer], seed=seed, **o
            )[1][0]
            for v, o in [
                ("plain", {}),
                ("+stored", {"correct": "stats", **options}),
                ("+stats", {"correct": "stats-propagated", "repair": False, **options}),
                ("+bias", {"refit": "bias", "data": calib}),
            ]
        }
        measured = bias_move(plans["+bias"], plans["plain"])
        row = {
            "layer": layer.split(".")[-1],
            "pool": plans["+stats"].info["pool"] or "",
            "rho": plans["+stats"].info["window_correlation"],
            "eta": plans["+stats"].info["model_error"],
            "shrink": plans["+stats"].info["shrink"],
        }
        for v in ("+stored", "+stats"):
            slope, corr = fit_line(bias_move(plans[v], plans["plain"]), measured)
            row[f"{v} slope"], row[f"{v} corr"] = slope, corr
        slope, corr = fit_line(plans["+stats"].info["predicted_shift"], measured)
        row["unshrunk slope"], row["unshrunk corr"] = slope, corr
        rows.append(row)
        print(
            f"  {row['layer']} pool {row['pool'] or '-':3s} rho {row['rho']:.2f} "
            f"eta {row['eta']:.2f}: slope/corr stored {row['+stored slope']:.2f}/"
            f"{row['+stored corr']:.2f}, stats {row['+stats slope']:.2f}/"
            f"{row['+stats corr']:.2f}",
            flush=True,
        )
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per variant: worst and mean difference to plain, settings worse by > 0.5."""
    out = {}
    for v in ("+stored", "+stats", "+unit", "+repair", "+bias"):
        diff = df[v] - df["plain"]
        out[v] = {
            "worst vs plain": diff.min(),
            "mean vs plain": diff.mean(),
            f"worse by > {TOLERANCE}": int((diff < -TOLERANCE).sum()),
            "better by > 0.5": int((diff > TOLERANCE).sum()),
            "settings": len(df),
        }
    return pd.DataFrame(out).T


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer settings, two LeNets, 500 test images",
    )
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--calib-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["lenet", "vgg", "shift"],
        choices=["lenet", "vgg", "shift"],
    )
    parser.add_argument("--models", nargs="*", help="only these LeNets")
    parser.add_argument(
        "--vgg-layers",
        nargs="*",
        default=[],
        help="only these VGG layers alone (conv2 ...)",
    )
    parser.add_argument("--variants", nargs="*", help="only these variants")
    parser.add_argument("--csv", type=Path, help="write the rows to this CSV")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.variants:
        ACTIVE.intersection_update(set(args.variants) | {"plain"})
    seed_everything(args.seed)
    if args.quick:
        args.test_size = min(args.test_size, 500)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    sources = []
    if "lenet" in args.parts:
        names = args.models or (list(LENETS)[:2] if args.quick else list(LENETS))
        for name in names:
            x, y, source = load_tensors(
                LENETS[name], train=False, limit=args.test_size, seed=args.seed
            )
            calib, _, _ = load_tensors(
                LENETS[name], train=True, limit=args.calib_size, seed=1
            )
            net, _ = load_or_train(name)
            sources.append(source.name)
            rows += model_part(
                name, net, x, y, calib, {"stats": lenet_stats(name)}, args
            )
    shifts = pd.DataFrame()
    if "vgg" in args.parts or "shift" in args.parts:
        x, y, source = load_vgg_data(train=False, limit=args.test_size, seed=args.seed)
        calib, _, _ = load_vgg_data(train=True, limit=args.calib_size, seed=1)
        net, _ = load_or_train(VGG)
        sources.append(source.name)
        options = {"input_shape": tuple(x.shape[1:])}
        if "vgg" in args.parts:
            rows += model_part(VGG, net, x, y, calib, options, args)
        if "shift" in args.parts:
            print("\nbias moves per VGG conv at 50 %: correction vs refit")
            shifts = shift_part(net, calib, options, args.seed)
    pd.set_option("display.width", 220)
    df = pd.DataFrame(rows)
    fmt = {"float_format": lambda v: f"{v:7.2f}", "index": False}
    if len(df):
        print("\n=== test accuracy (%) per setting ===")
        print(df.to_string(**fmt))
        print("\n=== each correction minus plain TropNNC (accuracy points) ===")
        print(summary(df).to_string(float_format=lambda v: f"{v:7.2f}"))
    if len(shifts):
        print("\n=== VGG convs at 50 %: bias move vs the bias refit's ===")
        print(shifts.to_string(**fmt))
    seconds = time.perf_counter() - start
    if args.csv and len(df):
        write_csv(df, args.csv, provenance(args, seconds, sources))
        if len(shifts):
            write_csv(
                shifts,
                args.csv.with_name(args.csv.stem + "_shifts.csv"),
                provenance(args, seconds, sources),
            )
    print(f"\ntotal wall time {seconds:.0f} s ({torch.get_num_threads()} threads)")
    return df


if __name__ == "__main__":
    main()
