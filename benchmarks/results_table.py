"""One table of every compression method on every shipped model of the book.

Rows:

* LeNet-5 and LeNet-300-100 on MNIST and on Fashion-MNIST (fc1 and fc2
  compressed) and the CIFAR VGG-16 at width 0.25 (all 13 convolutions and the
  hidden classifier layer), each at several kept fractions and with every method
  variant: data-free (TropNNC, TropNNC with the statistics-only correction,
  neural path k-means, magnitude or L1 filter, channel similarity, random) and
  data-driven (TropNNC with the bias refit or the least-squares refit, ThiNet,
  ThiNet with the refit);
* max-plus filter selection (chapter 7) on the shipped max-plus block
  ``maxplus_block_mnist`` (64 filters): the count rule at several thresholds tau
  (each class keeps its own winning filters), the top k filters by wins for k =
  50, 25 and 10 % of the filters (every class sees every kept filter), both
  counting wins on the calibration images (``--calib-size`` training images,
  as the data-driven methods above use); the weight rule at t = 0.6
  and k filters drawn at random with a fixed seed (data-free). "keep" is the
  fraction of filters kept and "setting" the threshold or k;
* the hybrid heads' L1 grid of chapter 6 (unstructured, matched budgets, r1 =
  r2 = r), on the shipped seed-0 heads.

Columns: test accuracy as compressed and after one fine-tuning epoch over the
fine-tuning images (``--ft-size`` training images, Adam at learning rate 1e-4,
batch 64; a hybrid head trains on their backbone features; a pruned max-plus
block keeps its mask, a pruned hybrid head its zero weights and switched-off
max-plus connections),
parameters, FLOPs per image, CPU latency per batch of 64 and relative to the
uncompressed model, compression wall time, and whether data was used.

Parameters of a max-plus block count its kept linear rows and its live (class,
filter) pairs. FLOPs count a multiply-add as two and a max-plus layer's add and
max per live connection as two (``helpers.metrics.count_flops``); for the hybrid
heads they count only the nonzero weights' multiply-adds, the work a sparse
kernel would do, and their parameters leave out the zero linear weights and
the switched-off max-plus connections (BatchNorm included). Latency runs the
models as they are: a hybrid head's pruned weights are zeros in dense tensors
(and a dense max-plus layer's pruned connections a mask), so the pruned head is
no faster than the unpruned one, and the table shows that.

Latency is measured once per distinct architecture (the model's name and the
names and shapes of its parameters and buffers), interleaved round by round
with the uncompressed model (``helpers.metrics.compare_latency``, best round of
each; a round times at least ``--repeats`` passes and about ``--round-ms``
milliseconds): "latency ms" is that best round's median pass and "latency %"
its ratio to the uncompressed model's in the same run. Rows of the same
architecture (different methods at the same kept fraction, or unstructured
pruning at any ratio) share that measurement; the uncompressed row is measured
alone (100 %).

Run from the repository root::

    python benchmarks/results_table.py --csv results/results_table.csv
    python benchmarks/results_table.py --quick
"""

from __future__ import annotations

import argparse
import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

import helpers  # noqa: F401  (must precede torchvision)
from helpers.compress import compress, hidden_layers, load_unit_stats
from helpers.data import load_tensors, load_vgg_data
from helpers.metrics import (
    compare_latency,
    count_flops,
    count_parameters,
    measure_latency,
)
from helpers.morph import MaxPlusBlock, select_by_weight, select_by_wins, win_counts
from helpers.recipes import MAXPLUS_BLOCK, load_or_train
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
MAXPLUS = MAXPLUS_BLOCK["name"]
#: Count-rule thresholds tau, fractions of filters kept by top-k and random, and t.
MAXPLUS_TAUS = (0.0, 0.2, 0.5)
MAXPLUS_FRACTIONS = (0.5, 0.25, 0.1)
MAXPLUS_T = 0.6
PARTS = ["lenet", "vgg", "maxplus", "hybrid"]
#: Learning rate of the one fine-tuning epoch (Adam, batch 64) of every row.
FT_LR = 1e-4


def architecture(model: nn.Module) -> tuple:
    """Sorted names and shapes of a model's parameters and buffers.

    Sorted: pruning utilities re-register a weight, which changes only the order.
    """
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return tuple(sorted((name, tuple(t.shape)) for name, t in tensors))


class Latency:
    """Latency per distinct architecture, measured interleaved with the reference.

    Keyed by model name and :func:`architecture`: rows that share both share one
    measurement. Returns ``(ms, % of the reference in the same run)``.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cache: dict[tuple, tuple[float, float]] = {}

    def repeats(self, model: nn.Module, example: torch.Tensor) -> int:
        """Timed passes per round: ``--repeats``, more for fast models.

        A round of a model lasts about ``--round-ms`` (at most 200 passes), so
        that sub-millisecond models are timed over more than timer noise.
        """
        once = measure_latency(
            model, example, repeats=3, warmup=1, threads=self.args.threads
        )
        wanted = math.ceil(self.args.round_ms / max(once, 1e-3))
        return min(200, max(self.args.repeats, wanted))

    def __call__(
        self, name: str, reference: nn.Module, model: nn.Module, example: torch.Tensor
    ) -> tuple[float, float]:
        """Latency (ms) of ``model`` on ``example`` and its ratio to ``reference``."""
        key = (name, architecture(model))
        if key not in self.cache:
            options = {
                "repeats": self.repeats(reference, example),
                "rounds": self.args.rounds,
                "threads": self.args.threads,
            }
            if architecture(model) == architecture(reference):
                ms = compare_latency([reference], example, **options)[0]
                self.cache[key] = (ms, 100.0)
            else:
                ref_ms, ms = compare_latency([reference, model], example, **options)
                self.cache[key] = (ms, 100 * ms / ref_ms)
        return self.cache[key]


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
        **latency_columns(data, small, example),
        "compress s": seconds,
    }


def latency_columns(
    data: dict[str, Any], model: nn.Module, example: torch.Tensor
) -> dict[str, float]:
    """The two latency columns of ``model`` against ``data``'s reference model."""
    ms, percent = data["latency"](data["name"], data["ref"], model, example)
    return {"latency ms": ms, "latency %": percent}


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
        **latency_columns(data, model, example),
        "compress s": 0.0,
    }


def model_rows(
    name: str,
    dataset: str,
    variants: list[str],
    keeps: tuple,
    args: argparse.Namespace,
    conv: bool,
    latency: Latency,
) -> list[dict[str, Any]]:
    """Every variant at every kept fraction on one shipped model."""
    load = load_vgg_data if dataset == "cifar10" else partial(load_tensors, dataset)
    x, y, source = load(train=False, limit=args.test_size, seed=args.seed)
    calib, _, _ = load(train=True, limit=args.calib_size, seed=1)
    x_ft, y_ft, _ = load(train=True, limit=args.ft_size, seed=2)
    net, _ = load_or_train(name)
    data = {
        "test": (x, y),
        "calib": calib,
        "ft": (x_ft, y_ft),
        "conv": conv,
        "batch": 64,
        "lr": FT_LR,
        "optimizer": "adam",
        "name": name,
        "ref": net,
        "latency": latency,
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


def block_parameters(block: MaxPlusBlock) -> int:
    """Parameters of a max-plus block: its linear rows and its live max-plus pairs."""
    return block.linear.weight.numel() + block.maxplus.live_connections


def shared(idx: torch.Tensor, classes: int, filters: int) -> torch.Tensor:
    """A keep pattern (classes, filters) in which every class sees the filters idx."""
    keep = torch.zeros(classes, filters, dtype=torch.bool)
    keep[:, idx] = True
    return keep


def maxplus_selections(
    args: argparse.Namespace,
) -> list[tuple[str, str, bool, Any]]:
    """(method, setting, data used, rule) of every max-plus row.

    A rule maps ``(net, calibration images, labels)`` to a keep pattern of
    shape (classes, filters); the random draws share one seeded permutation.
    """
    quick = args.quick
    taus = MAXPLUS_TAUS[:1] if quick else MAXPLUS_TAUS
    fractions = MAXPLUS_FRACTIONS[1:2] if quick else MAXPLUS_FRACTIONS
    filters = MAXPLUS_BLOCK["filters"]

    def count_rule(tau: float):
        return lambda net, x, y: select_by_wins(win_counts(net, x, y)[0], tau)

    def top_k(k: int):
        def rule(net: MaxPlusBlock, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            wins = win_counts(net, x, y)[0]
            order = wins.sum(dim=0).argsort(descending=True, stable=True)
            return shared(order[:k], *wins.shape)

        return rule

    def random_k(k: int):
        def rule(net: MaxPlusBlock, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            gen = torch.Generator().manual_seed(args.seed)
            classes, filters = net.maxplus.weight.shape
            return shared(torch.randperm(filters, generator=gen)[:k], classes, filters)

        return rule

    rows = [("count rule", f"tau {tau:g}", True, count_rule(tau)) for tau in taus]
    ks = [max(1, round(f * filters)) for f in fractions]
    rows += [("top-k by wins", f"k {k}", True, top_k(k)) for k in ks]
    rows.append(
        (
            "weight rule",
            f"t {MAXPLUS_T:g}",
            False,
            lambda net, x, y: select_by_weight(net.maxplus.weight, MAXPLUS_T),
        )
    )
    rows += [("random k", f"k {k}", False, random_k(k)) for k in ks]
    return rows


def maxplus_rows(args: argparse.Namespace, latency: Latency) -> list[dict[str, Any]]:
    """Chapter 7's filter selection rules on the shipped max-plus block."""
    x, y, source = load_tensors(
        "mnist", train=False, limit=args.test_size, seed=args.seed
    )
    x_cal, y_cal, _ = load_tensors("mnist", train=True, limit=args.calib_size, seed=1)
    x_ft, y_ft, _ = load_tensors("mnist", train=True, limit=args.ft_size, seed=2)
    net, _ = load_or_train(MAXPLUS)
    example = x[:64]
    filters = net.filters

    def row(block: MaxPlusBlock, tuned: float) -> dict[str, Any]:
        ms, percent = latency(MAXPLUS, net, block, example)
        return {
            "model": MAXPLUS,
            "data": source.name,
            "layers": "filters",
            "keep": block.filters / filters,
            "accuracy": accuracy(block, x, y),
            "fine-tuned": tuned,
            "params": block_parameters(block),
            "FLOPs": count_flops(block, example[:1]),
            "latency ms": ms,
            "latency %": percent,
        }

    rows = [
        {
            **row(net, float("nan")),
            "method": "uncompressed",
            "setting": "",
            "data used": False,
            "compress s": 0.0,
        }
    ]
    for method, setting, driven, rule in maxplus_selections(args):
        start = time.perf_counter()
        small = net.prune(rule(net, x_cal, y_cal))
        seconds = time.perf_counter() - start
        tuned = fine_tuned(small, (x_ft, y_ft), x, y, FT_LR, "adam")
        rows.append(
            {
                **row(small, tuned),
                "method": method,
                "setting": setting,
                "data used": driven,
                "compress s": seconds,
            }
        )
        print(
            f"  {MAXPLUS} {method} {setting}: {small.filters} filters, "
            f"{rows[-1]['accuracy']:.2f} (fine-tuned {tuned:.2f})",
            flush=True,
        )
    return rows


def linear_zeros(model: nn.Module) -> int:
    """Zero entries of a model's linear weights (the unstructured pruning's work)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return sum(m.weight.numel() - int(m.weight.count_nonzero()) for m in layers)


def head_columns(
    name: str,
    reference: nn.Module,
    head: nn.Module,
    feats: torch.Tensor,
    y: torch.Tensor,
    latency: Latency,
) -> dict[str, Any]:
    """Accuracy, nonzero parameters and FLOPs, and latency of one hybrid head."""
    from helpers.hybrid import accuracy_on_features, head_parameters

    example = feats[:64]
    ms, percent = latency(name, reference, head, example)
    return {
        "accuracy": 100 * accuracy_on_features(head, feats, y),
        "params": head_parameters(head) - linear_zeros(head),
        "FLOPs": count_flops(head, example[:1], nonzero=True),
        "latency ms": ms,
        "latency %": percent,
    }


def hybrid_rows(args: argparse.Namespace, latency: Latency) -> list[dict[str, Any]]:
    """The hybrid heads' L1 grid (r1 = r2), on the shipped small checkpoints."""
    from helpers.hybrid import (
        SMALL_CONFIG,
        accuracy_on_features,
        checkpoint_name,
        extract_features,
        fine_tune_pruned,
        load_data,
        prune_head,
    )

    x, y, source = load_data(
        SMALL_CONFIG.dataset, train=False, limit=args.test_size, seed=args.seed
    )
    x_ft, y_ft, _ = load_data(
        SMALL_CONFIG.dataset, train=True, limit=args.ft_size, seed=2
    )
    ratios = HYBRID_RATIOS[2:3] if args.quick else HYBRID_RATIOS
    rows = []
    for head in HYBRID_HEADS:
        name = checkpoint_name(head)
        net, _ = load_or_train(name)
        feats, feats_ft = extract_features(net, x), extract_features(net, x_ft)

        base = {
            "model": name,
            "data": source.name,
            "data used": False,
            "layers": "head",
            "setting": "",
        }
        rows.append(
            {
                **base,
                **head_columns(name, net.head, net.head, feats, y, latency),
                "method": "uncompressed",
                "keep": 1.0,
                "fine-tuned": float("nan"),
                "compress s": 0.0,
            }
        )
        for r in ratios:
            start = time.perf_counter()
            pruned = prune_head(net.head, r, r)
            seconds = time.perf_counter() - start
            tuned = fine_tune_pruned(pruned, feats_ft, y_ft, epochs=1, lr=FT_LR)
            rows.append(
                {
                    **base,
                    **head_columns(name, net.head, pruned, feats, y, latency),
                    "method": "L1 unstructured",
                    "keep": 1 - r,
                    "setting": f"r1 = r2 = {r:g}",
                    "fine-tuned": 100 * accuracy_on_features(tuned, feats, y),
                    "compress s": seconds,
                }
            )
        print(f"  {name}: L1 grid done", flush=True)
    return rows


#: The columns in the order they are written (chapter 10 reads them by name).
COLUMNS = [
    "model",
    "data",
    "method",
    "data used",
    "keep",
    "layers",
    "setting",
    "accuracy",
    "fine-tuned",
    "params",
    "FLOPs",
    "latency ms",
    "latency %",
    "compress s",
]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two LeNets, one kept fraction, fewer images and settings",
    )
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--calib-size", type=int, default=256)
    parser.add_argument("--ft-size", type=int, default=500)
    parser.add_argument(
        "--repeats", type=int, default=5, help="least timed passes per latency round"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved latency rounds"
    )
    parser.add_argument(
        "--round-ms",
        type=float,
        default=50.0,
        help="least time per model and latency round (fast models repeat more)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS)
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    if args.quick:
        args.test_size, args.ft_size = min(args.test_size, 300), min(args.ft_size, 200)
    start = time.perf_counter()
    latency = Latency(args)
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
                latency=latency,
            )
    if "vgg" in args.parts:
        rows += model_rows(
            VGG,
            "cifar10",
            VGG_VARIANTS,
            (0.5,) if args.quick else (0.9, 0.75, 0.5, 0.25),
            args,
            conv=True,
            latency=latency,
        )
    if "maxplus" in args.parts:
        rows += maxplus_rows(args, latency)
    if "hybrid" in args.parts:
        rows += hybrid_rows(args, latency)
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    df["setting"] = df["setting"].fillna("")
    seconds = time.perf_counter() - start
    pd.set_option("display.width", 200)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.csv:
        write_csv(df, args.csv, provenance(args, seconds, list(df["data"])))
    print(
        f"\ntotal wall time {seconds:.0f} s ({torch.get_num_threads()} threads; "
        f"{len(latency.cache)} latency measurements for {len(df)} rows)"
    )
    return df


if __name__ == "__main__":
    main()
