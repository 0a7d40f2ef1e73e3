"""One table of every compression method on every shipped model of the book.

Rows: LeNet-5 and LeNet-300-100 on MNIST and on Fashion-MNIST (fc1 and fc2
compressed), the CIFAR VGG-16 at width 0.25 (all 13 convolutions and the
hidden classifier layer), each at several kept fractions and with every method
variant: data-free (TropNNC, TropNNC with the statistics-only correction,
neural path k-means, magnitude or L1 filter, channel similarity, random) and
data-driven (TropNNC with the bias refit or the least-squares refit, ThiNet,
ThiNet with the refit); and the hybrid heads' L1 pruning grid (unstructured,
no fine-tuning, as in their reference protocol). Columns: test accuracy as
compressed and after one short fine-tuning epoch, parameters, FLOPs per image,
CPU latency per batch, compression wall time, and whether data was used.

Run from the repository root::

    python benchmarks/results_table.py --csv results/results_table.csv
    python benchmarks/results_table.py --quick
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
from helpers.compress import compress, hidden_layers, load_unit_stats
from helpers.data import load_tensors
from helpers.metrics import count_flops, count_parameters, measure_latency
from helpers.recipes import load_or_train
from helpers.train import checkpoint_dir, seed_everything

from common import accuracy, fine_tuned, provenance, write_csv

LENETS = {
    "lenet5_mnist": "mnist",
    "lenet300_mnist": "mnist",
    "lenet5_fashion": "fashion_mnist",
    "lenet300_fashion": "fashion_mnist",
}
VGG = "vgg_cifar_w025"
#: Variant name -> (method, options, data-driven). "magnitude" is L1 filter on VGG.
VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "tropnnc": ("tropnnc", {}, False),
    "tropnnc+stats": ("tropnnc", {"correct": "stats"}, False),
    "neural_path_kmeans": ("neural_path_kmeans", {}, False),
    "magnitude": ("magnitude", {}, False),
    "channel_similarity": ("channel_similarity", {}, False),
    "random": ("random", {}, False),
    "tropnnc+bias": ("tropnnc", {"refit": "bias"}, True),
    "tropnnc+refit": ("tropnnc", {"refit": True}, True),
    "thinet": ("thinet", {}, True),
    "thinet+refit": ("thinet", {"refit": True}, True),
}
LENET_VARIANTS = [v for v in VARIANTS if v != "channel_similarity"]
VGG_VARIANTS = [v for v in VARIANTS if v != "neural_path_kmeans"]
HYBRID_HEADS = ("relu", "maxout", "dense", "sparse")
HYBRID_RATIOS = (0.7, 0.8, 0.9, 0.95)


def measure(
    model: nn.Module,
    variant: str,
    keep: float,
    layers: list[str],
    data: dict[str, Any],
    options: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Compress ``model`` with one variant and measure everything for one row."""
    method, opts, driven = VARIANTS[variant]
    if variant == "magnitude" and data["conv"]:
        method = "l1_filter"
    extra = {"data": data["calib"]} if driven else {}
    extra.update(options if opts.get("correct") == "stats" else {})
    start = time.perf_counter()
    small = compress(
        model, method, keep, layers=layers, seed=args.seed, **opts, **extra
    )
    seconds = time.perf_counter() - start
    x, y = data["test"]
    example = x[: data["batch"]]
    return {
        "method": variant,
        "data used": driven,
        "keep": keep,
        "layers": "+".join(layers) if len(layers) < 3 else f"all {len(layers)}",
        "accuracy": accuracy(small, x, y),
        "fine-tuned": fine_tuned(
            small, data["ft"], x, y, data["lr"], data["optimizer"]
        ),
        "params": count_parameters(small),
        "FLOPs": count_flops(small, example[:1]),
        "latency ms": measure_latency(small, example, repeats=args.repeats),
        "compress s": seconds,
    }


def uncompressed_row(
    model: nn.Module, data: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """The reference row of a model (keep 1, no method)."""
    x, y = data["test"]
    example = x[: data["batch"]]
    return {
        "method": "uncompressed",
        "data used": False,
        "keep": 1.0,
        "layers": "",
        "accuracy": accuracy(model, x, y),
        "fine-tuned": float("nan"),
        "params": count_parameters(model),
        "FLOPs": count_flops(model, example[:1]),
        "latency ms": measure_latency(model, example, repeats=args.repeats),
        "compress s": 0.0,
    }


def model_rows(
    name: str,
    dataset: str,
    variants: list[str],
    keeps: tuple,
    args: argparse.Namespace,
    conv: bool,
) -> list[dict[str, Any]]:
    """Every variant at every kept fraction on one shipped model."""
    x, y, source = load_tensors(
        dataset, train=False, limit=args.test_size, seed=args.seed
    )
    calib, _, _ = load_tensors(dataset, train=True, limit=args.calib_size, seed=1)
    x_ft, y_ft, _ = load_tensors(dataset, train=True, limit=args.ft_size, seed=2)
    net, _ = load_or_train(name)
    data = {
        "test": (x, y),
        "calib": calib,
        "ft": (x_ft, y_ft),
        "conv": conv,
        "batch": 64,
        "lr": 1e-4,
        "optimizer": "adam",
    }
    if conv:
        layers = hidden_layers(net)
        options = {"input_shape": tuple(x.shape[1:])}
    else:
        layers = ["fc1", "fc2"]
        stats = load_unit_stats(
            checkpoint_dir() / f"{name}.stats.json", checkpoint_dir() / f"{name}.pt"
        )
        options = {"stats": stats}
    rows = [{"model": name, "data": source.name, **uncompressed_row(net, data, args)}]
    for keep in keeps:
        for variant in variants:
            row = measure(net, variant, keep, layers, data, options, args)
            rows.append({"model": name, "data": source.name, **row})
            print(
                f"  {name} {variant} keep {keep:.0%}: {row['accuracy']:.2f} "
                f"(fine-tuned {row['fine-tuned']:.2f}, {row['compress s']:.1f} s)",
                flush=True,
            )
    return rows


def hybrid_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The hybrid heads' L1 grid (r1 = r2), on the shipped small checkpoints."""
    from helpers.hybrid import (
        SMALL_CONFIG,
        accuracy_on_features,
        checkpoint_name,
        extract_features,
        load_data,
        prune_head,
    )

    x, y, source = load_data(
        SMALL_CONFIG.dataset, train=False, limit=args.test_size, seed=args.seed
    )
    rows = []
    for head in HYBRID_HEADS:
        name = checkpoint_name(head)
        net, _ = load_or_train(name)
        feats = extract_features(net, x)
        base = {
            "model": name,
            "data": source.name,
            "data used": False,
            "layers": "head",
            "fine-tuned": float("nan"),
            "FLOPs": np.nan,
            "latency ms": np.nan,
        }
        rows.append(
            {
                **base,
                "method": "uncompressed",
                "keep": 1.0,
                "accuracy": 100 * accuracy_on_features(net.head, feats, y),
                "params": count_parameters(net.head),
                "compress s": 0.0,
            }
        )
        for r in HYBRID_RATIOS:
            start = time.perf_counter()
            pruned = prune_head(net.head, r, r)
            seconds = time.perf_counter() - start
            nonzero = int(sum(int((p != 0).sum()) for p in pruned.parameters()))
            rows.append(
                {
                    **base,
                    "method": "L1 unstructured",
                    "keep": 1 - r,
                    "accuracy": 100 * accuracy_on_features(pruned, feats, y),
                    "params": nonzero,
                    "compress s": seconds,
                }
            )
        print(f"  {name}: L1 grid done", flush=True)
    return rows


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two LeNets, one kept fraction, fewer images",
    )
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--calib-size", type=int, default=256)
    parser.add_argument("--ft-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["lenet", "vgg", "hybrid"],
        choices=["lenet", "vgg", "hybrid"],
    )
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    if args.quick:
        args.test_size, args.ft_size = min(args.test_size, 300), min(args.ft_size, 200)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if "lenet" in args.parts:
        names = list(LENETS)[:2] if args.quick else list(LENETS)
        for name in names:
            rows += model_rows(
                name,
                LENETS[name],
                LENET_VARIANTS,
                (0.1,) if args.quick else (0.5, 0.25, 0.1),
                args,
                conv=False,
            )
    if "vgg" in args.parts:
        rows += model_rows(
            VGG,
            "cifar10",
            VGG_VARIANTS,
            (0.5,) if args.quick else (0.9, 0.75, 0.5, 0.25),
            args,
            conv=True,
        )
    if "hybrid" in args.parts:
        rows += hybrid_rows(args)
    df = pd.DataFrame(rows)
    seconds = time.perf_counter() - start
    pd.set_option("display.width", 200)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.csv:
        write_csv(df, args.csv, provenance(args, seconds, list(df["data"])))
    print(f"\ntotal wall time {seconds:.0f} s ({torch.get_num_threads()} threads)")
    return df


if __name__ == "__main__":
    main()
