"""Every channel-compression method on the CIFAR VGG-16 (width 0.25), side by side.

On the shipped checkpoint ``vgg_cifar_w025`` (CIFAR-10, or offline its
Fashion-MNIST 32x32 substitute; the loader prints which data ran) it prints:

1. all 13 convolutions compressed with every method at keep 75/50/25 % and with
   Li et al.'s "pruned-A" schedule, next to Torch-Pruning's criteria at the same
   channel counts (``tp_l1``, ``tp_bn_scale``, ``tp_fpgm``): test accuracy as
   compressed, after BatchNorm recalibration on the calibration images, and
   after every epoch of the book's fine-tuning protocol (``fine_tune``,
   ``--ft-epochs`` epochs on ``--ft-size`` training images), parameters, FLOPs,
   the measured CPU latency ratio next to the FLOPs ratio, and the compression
   time (CPU time of one thread, which a busy machine does not inflate);
2. (a) each convolution compressed alone at 50 % and 25 % (26 settings, no
   fine-tuning): a sensitivity table per method, plus two labelled data-driven
   TropNNC variants (bias correction, least-squares refit) that measure why
   data-free merging loses where it does;
3. (b) accuracy as the convolutions are compressed at 50 % one after another
   (conv1, then conv1 and conv2, ...): one curve per method, as a table;
4. a tally: TropNNC's mean vs ThiNet's in (a), how often TropNNC beats
   ``l1_filter``, ``channel_similarity`` and ``random`` in (a), TropNNC vs ThiNet
   after fine-tuning at 50 %, TropNNC minus each Torch-Pruning criterion at 50 %
   (as compressed, recalibrated, fine-tuned), and the compression times.

``--torchvision`` adds full-size torchvision ``vgg16_bn`` (13 convolutions) and
``resnet50`` (the inner conv1/conv2 of every Bottleneck) with random weights:
shapes, parameters, FLOPs, latency and compression time (accuracy needs the
pretrained ImageNet weights, which are not available offline).

Run from the repository root::

    python benchmarks/compress_vgg.py                 # hours on one core (see below)
    python benchmarks/compress_vgg.py --quick         # fewer images and settings
    python benchmarks/compress_vgg.py --torchvision   # plus the full-size networks

The default run fine-tunes 40 compressed models (4 schedules x 10 methods) for 4
epochs on 30,000 images each, which takes hours on one CPU core;
``--ft-epochs`` and ``--ft-size`` shrink it, ``--quick`` (2 epochs on
500 images) is a smoke test of a few minutes.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

import helpers  # noqa: F401  (must precede torchvision)
from helpers.compress import (
    METHODS,
    apply_plan,
    compress,
    is_data_driven,
    torch_pruning_compress,
)
from helpers.data import load_vgg_data
from helpers.metrics import compare_latency, count_flops, count_parameters
from helpers.models import conv_names, pruned_a_fractions
from helpers.recipes import load_or_train
from helpers.train import (
    FINE_TUNE,
    fine_tune,
    recalibrate_batchnorm,
    seed_everything,
)

from common import SuffixEvaluator, accuracy, provenance, write_csv

CHECKPOINT = "vgg_cifar_w025"
WIDTH = 0.25
#: Data-free methods first, then the data-driven ThiNet.
METHOD_LIST = [
    "tropnnc",
    "neural_path_kmeans",
    "channel_similarity",
    "l1_filter",
    "magnitude",
    "random",
    "thinet",
]
#: Torch-Pruning's criteria (helpers.compress.torch_pruning), in the all-layer
#: table only: the same layers pruned to the same channel counts.
TP_METHOD_LIST = ["tp_l1", "tp_bn_scale", "tp_fpgm"]
KEEPS = (0.75, 0.5, 0.25)
SENSITIVITY_KEEPS = (0.5, 0.25)
CUMULATIVE_KEEP = 0.5
#: Data-driven TropNNC variants added to the per-layer table (a), to measure why
#: data-free merging loses: only the consumer's bias moved by the mean output
#: error (the mean shift), or the consumer refit by least squares.
VARIANTS = {
    "trop+bias": ("tropnnc", {"refit": "bias"}),
    "trop+refit": ("tropnnc", {"refit": True}),
}
#: Short column names for the printed tables.
SHORT = {
    "tropnnc": "trop",
    "neural_path_kmeans": "np-km",
    "channel_similarity": "ch-sim",
    "l1_filter": "l1",
    "magnitude": "magn",
    "random": "random",
    "thinet": "thinet",
    "tp_l1": "tp-l1",
    "tp_bn_scale": "tp-bn",
    "tp_fpgm": "tp-fpgm",
}


def plan_for(
    model: nn.Module,
    method: str,
    layer: str,
    keep: float,
    calib: torch.Tensor,
    reference: nn.Module,
    seed: int,
    **options: Any,
) -> Any:
    """One method's plan for one layer (data and reference only when data-driven)."""
    driven = is_data_driven(method, **options)
    extra = {"data": calib, "reference": reference} if driven else {}
    return METHODS[method](model, layer, keep, seed=seed, **extra, **options)


def ft_columns(epochs: int) -> list[str]:
    """Names of the per-epoch fine-tuning columns: ft_epoch_1 .. ft_epoch_E."""
    return [f"ft_epoch_{e}" for e in range(1, epochs + 1)]


def part1_columns(args: argparse.Namespace) -> list[str]:
    """Columns of the all-layer table, in order."""
    return [
        "schedule",
        "method",
        "accuracy",
        "recalibrated",
        *ft_columns(args.ft_epochs),
        "params",
        "params %",
        "FLOPs %",
        "latency %",
        "seconds",
    ]


def after_compression(
    small: nn.Module, data: dict[str, Any], args: argparse.Namespace
) -> dict[str, float]:
    """Accuracy (%) after BatchNorm recalibration, and after each fine-tuning epoch.

    Both work on copies of ``small``: recalibration re-estimates the running
    statistics on the calibration images; fine-tuning (the book's protocol,
    :func:`helpers.train.fine_tune`) starts from the model as compressed and
    records the test accuracy after every epoch.
    """
    x, y = data["test"]
    calibrated = recalibrate_batchnorm(copy.deepcopy(small), data["calib"])
    tuned = copy.deepcopy(small)
    history = fine_tune(
        tuned, data["ft"], epochs=args.ft_epochs, val=(x, y), lr=args.lr, seed=0
    )
    curve = [100 * a for a in history["val_acc"]]
    return {
        "recalibrated": accuracy(calibrated, x, y),
        **dict(zip(ft_columns(args.ft_epochs), curve)),
    }


def all_layers(
    net: nn.Module, data: dict[str, Any], args: argparse.Namespace
) -> pd.DataFrame:
    """Part 1: every method x schedule on all (or pruned-A's) convolutions.

    Torch-Pruning's criteria run on the same layers at the same channel counts;
    every row is also recalibrated and fine-tuned.
    """
    convs = conv_names()
    fractions = pruned_a_fractions(WIDTH)
    halved = [name for name in convs if fractions[name] < 1]
    if set(fractions.values()) != {0.5, 1.0}:
        raise RuntimeError(
            f"pruned-A is expected to halve or keep each layer, got {fractions}"
        )
    schedules = {f"{keep:.0%}": (keep, convs) for keep in args.keeps}
    schedules["pruned-A"] = (0.5, halved)
    x, y = data["test"]
    batch = x[:64]
    base_flops, base_params = count_flops(net, batch[:1]), count_parameters(net)
    rows = []
    for schedule, (keep, layers) in schedules.items():
        latency: float | None = None  # compressed / uncompressed
        shapes: dict[str, tuple[int, ...]] | None = None
        for method in METHOD_LIST + TP_METHOD_LIST:
            seed_everything(args.seed)
            start = time.process_time()
            if method in TP_METHOD_LIST:
                small = torch_pruning_compress(
                    net, method, keep, layers=layers, example_inputs=batch[:1]
                )
            else:
                small = compress(
                    net,
                    method,
                    keep,
                    layers=layers,
                    seed=args.seed,
                    data=data["calib"] if is_data_driven(method) else None,
                )
            seconds = time.process_time() - start
            these = {n: tuple(p.shape) for n, p in small.named_parameters()}
            if shapes is None:
                shapes = these
            elif these != shapes:  # the latency below is measured once
                raise RuntimeError(f"{method} at {schedule} gave other shapes")
            if latency is None:  # same shapes for every method at one schedule
                t_full, t_small = compare_latency(
                    [net, small], batch, repeats=args.repeats
                )
                latency = t_small / t_full
            flops = count_flops(small, batch[:1])
            rows.append(
                {
                    "schedule": schedule,
                    "method": method,
                    "accuracy": accuracy(small, x, y),
                    **after_compression(small, data, args),
                    "params": count_parameters(small),
                    "params %": 100 * count_parameters(small) / base_params,
                    "FLOPs %": 100 * flops / base_flops,
                    "latency %": 100 * latency,
                    "seconds": seconds,
                }
            )
            print(f"    {schedule} {method}: {rows[-1]['accuracy']:.2f} %", flush=True)
        print(f"  done: all layers, {schedule}", flush=True)
    return pd.DataFrame(rows)


def sensitivity(
    net: nn.Module, data: dict[str, Any], args: argparse.Namespace
) -> pd.DataFrame:
    """Part 2 (a): each convolution compressed alone, no fine-tuning."""
    x, y = data["test"]
    rows = []
    for layer in conv_names():
        test = SuffixEvaluator(net, layer, x, y)
        for keep in args.sensitivity_keeps:
            runs = [(m, m, {}) for m in METHOD_LIST]
            runs += [(label, m, opts) for label, (m, opts) in VARIANTS.items()]
            for label, method, options in runs:
                start = time.process_time()
                plan = plan_for(
                    net, method, layer, keep, data["calib"], net, args.seed, **options
                )
                small = apply_plan(net, plan)
                rows.append(
                    {
                        "layer": layer.split(".")[-1],
                        "keep": keep,
                        "method": label,
                        "accuracy": test(small),
                        "seconds": time.process_time() - start,
                    }
                )
        print(f"  done: sensitivity, {layer}", flush=True)
    return pd.DataFrame(rows)


def cumulative(
    net: nn.Module, data: dict[str, Any], args: argparse.Namespace
) -> pd.DataFrame:
    """Part 2 (b): accuracy as the convolutions are compressed one after another."""
    x, y = data["test"]
    rows = []
    for method in METHOD_LIST:
        current = net
        for i, layer in enumerate(conv_names(), 1):
            plan = plan_for(
                current, method, layer, CUMULATIVE_KEEP, data["calib"], net, args.seed
            )
            current = apply_plan(current, plan)
            rows.append(
                {
                    "layers": f"1-{i}",
                    "method": method,
                    "accuracy": accuracy(current, x, y),
                }
            )
        print(f"  done: cumulative, {method}", flush=True)
    return pd.DataFrame(rows)


def torchvision_table(args: argparse.Namespace) -> pd.DataFrame:
    """Full-size vgg16_bn and resnet50 (random weights): costs and compression time.

    vgg16_bn is compressed twice: its 13 convolutions, and with the default call
    (``layers=None``: also the classifier's two hidden Linear layers). For
    resnet50 the default call compresses exactly the inner conv1/conv2 of every
    Bottleneck (conv3 feeds the residual sum and is skipped).
    """
    import torchvision

    from helpers.compress import compress_with_plans

    torch.manual_seed(args.seed)
    x = torch.randn(1, 3, args.image_size, args.image_size)
    vgg = torchvision.models.vgg16_bn().eval()
    resnet = torchvision.models.resnet50().eval()
    vgg_convs = [n for n, m in vgg.named_modules() if isinstance(m, nn.Conv2d)]
    inner = [
        n
        for n, m in resnet.named_modules()
        if n.startswith("layer") and n.endswith(("conv1", "conv2"))
    ]
    runs = [
        ("vgg16_bn", vgg, "13 convs", vgg_convs),
        ("vgg16_bn", vgg, "default (all hidden)", None),
        ("resnet50", resnet, "default (inner convs)", None),
    ]
    rows, base = [], {}
    for name, model, label, layers in runs:
        if name not in base:
            base[name] = {
                "params": count_parameters(model),
                "flops": count_flops(model, x),
            }
            base[name]["row"] = {
                "network": name,
                "compressed": "-",
                "layers": 0,
                "params (M)": base[name]["params"] / 1e6,
                "GFLOPs": base[name]["flops"] / 1e9,
                "latency (ms)": np.nan,
                "params %": 100.0,
                "FLOPs %": 100.0,
                "latency %": 100.0,
                "seconds": 0.0,
            }
            rows.append(base[name]["row"])
        for method in args.torchvision_methods:
            start = time.process_time()
            small, plans = compress_with_plans(model, method, 0.5, layers=layers)
            seconds = time.process_time() - start
            if small(x).shape != model(x).shape:
                raise RuntimeError(f"{name} changed its output shape")
            if name == "resnet50" and [p.layer for p in plans] != inner:
                raise RuntimeError("the default call did not pick the inner convs")
            params, flops = count_parameters(small), count_flops(small, x)
            t_full, lat = compare_latency([model, small], x, repeats=3, rounds=2)
            first = base[name]["row"]
            first["latency (ms)"] = np.nanmin([first["latency (ms)"], t_full])
            b = base[name]
            rows.append(
                {
                    "network": name,
                    "compressed": f"{method} 50 %, {label}",
                    "layers": len(plans),
                    "params (M)": params / 1e6,
                    "GFLOPs": flops / 1e9,
                    "latency (ms)": lat,
                    "params %": 100 * params / b["params"],
                    "FLOPs %": 100 * flops / b["flops"],
                    "latency %": 100 * lat / t_full,
                    "seconds": seconds,
                }
            )
            widths = [p.n_after for p in plans]
            print(f"  done: {name} {method} {label}; widths {widths}", flush=True)
    return pd.DataFrame(rows)


def fmt(v: float) -> str:
    """Numbers with two decimals in the printed tables."""
    return f"{v:7.2f}"


def short(df: pd.DataFrame) -> pd.DataFrame:
    """The method columns of ``df`` (then Torch-Pruning's, variants), short names."""
    extra = [m for m in TP_METHOD_LIST + list(VARIANTS) if m in df.columns]
    columns = METHOD_LIST + extra
    return df[columns].rename(columns=SHORT)


def last_ft_column(part1: pd.DataFrame) -> str:
    """The column of the last fine-tuning epoch in the all-layer table."""
    return [c for c in part1.columns if c.startswith("ft_epoch_")][-1]


def print_part1(base: float, part1: pd.DataFrame) -> None:
    """Part 1: accuracy as compressed, recalibrated, fine-tuned; costs and times."""
    print(
        f"\n=== 1. all convolutions compressed (uncompressed accuracy {base:.2f} %) ==="
    )
    last = last_ft_column(part1)
    epochs = int(last.rsplit("_", 1)[1])
    print(
        "(tp-l1, tp-bn, tp-fpgm: Torch-Pruning's group L1, BatchNorm scale and FPGM "
        "criteria at the same channel counts)"
    )

    def table(values: str) -> pd.DataFrame:
        return short(
            part1.pivot_table(
                index="schedule", columns="method", values=values, sort=False
            )
        )

    for values, title in (
        ("accuracy", "as compressed"),
        ("recalibrated", "after BatchNorm recalibration on the calibration images"),
        (last, f"after {epochs} epoch(s) of fine-tuning"),
    ):
        print(f"accuracy (%) {title}:")
        print(table(values).to_string(float_format=fmt))
    curve = part1.melt(
        id_vars=["schedule", "method"],
        value_vars=ft_columns(epochs),
        var_name="epoch",
        value_name="ft",
    )
    curve["epoch"] = curve["epoch"].str.rsplit("_", n=1).str[1].astype(int)
    print("fine-tuning: test accuracy (%) after each epoch:")
    print(
        short(
            curve.pivot_table(
                index=["schedule", "epoch"], columns="method", values="ft", sort=False
            )
        ).to_string(float_format=fmt)
    )
    costs = part1.groupby("schedule", sort=False)[
        ["params", "params %", "FLOPs %", "latency %"]
    ].first()
    costs["latency / FLOPs"] = costs["latency %"] / costs["FLOPs %"]
    print(
        "\ncosts per schedule (every method gives the same shapes; latency: batch of "
        "64, one thread, median, best of 3 rounds alternating with the uncompressed "
        "model):"
    )
    print(costs.to_string(float_format=fmt))
    times = short(
        part1.pivot_table(
            index="schedule", columns="method", values="seconds", sort=False
        )
    )
    print(
        "\ncompression CPU time (s; one thread, so the wall time on an idle machine):"
    )
    print(times.to_string(float_format=fmt))


def print_sensitivity(sens: pd.DataFrame) -> pd.DataFrame:
    """Part 2 (a): the per-layer table, its means and times; returns the table."""
    print(
        "\n=== 2a. each convolution compressed alone, no fine-tuning: accuracy (%) ==="
    )
    table = sens.pivot_table(
        index=["keep", "layer"], columns="method", values="accuracy", sort=False
    )
    print(
        "(trop+bias, trop+refit: TropNNC with the data-driven bias correction or "
        "least-squares refit of the next layer, for the analysis)"
    )
    print(short(table).to_string(float_format=fmt))
    print("mean over the settings:")
    print(short(table).mean().to_frame("mean").T.to_string(float_format=fmt))
    stimes = short(
        sens.pivot_table(index="keep", columns="method", values="seconds", sort=False)
    )
    print("mean CPU time per layer (s):")
    print(stimes.to_string(float_format=fmt))
    return table


def print_tally(part1: pd.DataFrame, table: pd.DataFrame | None) -> None:
    """The acceptance targets, each with its numbers and a yes/NO."""
    print("\n=== tally ===")
    if table is not None:
        n = len(table)
        diff = table["tropnnc"].mean() - table["thinet"].mean()
        print(
            f"  (a) TropNNC mean {table['tropnnc'].mean():.2f} vs ThiNet mean "
            f"{table['thinet'].mean():.2f}: {diff:+.2f} points (target: at most "
            f"1.5 below) -> {'yes' if diff >= -1.5 else 'NO'}"
        )
        for other in ("l1_filter", "channel_similarity", "random"):
            wins = int((table["tropnnc"] > table[other]).sum())
            ties = int((table["tropnnc"] == table[other]).sum())
            print(
                f"  (a) TropNNC beats {other:<18s} in {wins:2d} of {n} settings "
                f"({100 * wins / n:.0f} %, {ties} ties; target >= 80 %) -> "
                f"{'yes' if wins >= 0.8 * n else 'NO'}"
            )
        for variant in VARIANTS:
            print(
                f"  (a) analysis: {variant} mean {table[variant].mean():.2f} "
                f"({table[variant].mean() - table['thinet'].mean():+.2f} vs ThiNet; "
                f"beats ThiNet in {int((table[variant] > table['thinet']).sum())} "
                f"of {n})"
            )
    if len(part1):
        ft = part1.pivot_table(
            index="schedule",
            columns="method",
            values=last_ft_column(part1),
            sort=False,
        )
        if "50%" in ft.index:
            trop, thin = ft.loc["50%", "tropnnc"], ft.loc["50%", "thinet"]
            print(
                f"  all layers at 50 %, fine-tuned: TropNNC {trop:.2f} vs ThiNet "
                f"{thin:.2f} ({trop - thin:+.2f} points; target: at most 1 below) "
                f"-> {'yes' if trop - thin >= -1 else 'NO'}"
            )
            at50 = part1[part1["schedule"] == "50%"].set_index("method")
            stages = {
                "as compressed": "accuracy",
                "recalibrated": "recalibrated",
                "fine-tuned": last_ft_column(part1),
            }
            for tp in [m for m in TP_METHOD_LIST if m in at50.index]:
                gaps = ", ".join(
                    f"{label} {at50.loc['tropnnc', col] - at50.loc[tp, col]:+.2f}"
                    for label, col in stages.items()
                )
                print(f"  all layers at 50 %, TropNNC minus {tp}: {gaps} points")
        t_trop = part1.loc[part1["method"] == "tropnnc", "seconds"].mean()
        t_thin = part1.loc[part1["method"] == "thinet", "seconds"].mean()
        print(
            f"  compression CPU time, all layers: TropNNC {t_trop:.2f} s vs ThiNet "
            f"{t_thin:.2f} s per network -> TropNNC "
            f"{'faster' if t_trop < t_thin else 'NOT faster'}"
        )


def print_tables(
    base: float, part1: pd.DataFrame, sens: pd.DataFrame, cum: pd.DataFrame
) -> None:
    """The side-by-side tables and the tally (parts that ran)."""
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(
        "\nmethods: "
        + ", ".join(f"{v} = {k}" for k, v in SHORT.items())
        + " (thinet is data-driven, the others data-free)"
    )
    if len(part1):
        print_part1(base, part1)
    table = print_sensitivity(sens) if len(sens) else None
    if len(cum):
        print(
            f"\n=== 2b. convolutions compressed one after another at "
            f"{CUMULATIVE_KEEP:.0%}: accuracy (%) ==="
        )
        curve = short(
            cum.pivot_table(
                index="layers", columns="method", values="accuracy", sort=False
            )
        )
        print(curve.to_string(float_format=fmt))
    print_tally(part1, table)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="500 test images, keep 50 %% and 25 %% only, fine-tuning: 2 epochs on "
        "500 images",
    )
    parser.add_argument(
        "--test-size", type=int, default=1000, help="test images (seeded subset)"
    )
    parser.add_argument(
        "--calib-size", type=int, default=256, help="training images given to ThiNet"
    )
    parser.add_argument(
        "--ft-size",
        type=int,
        default=30000,
        help="training images of the fine-tuning (seeded subset)",
    )
    parser.add_argument(
        "--ft-epochs",
        type=int,
        default=4,
        help="fine-tuning epochs (test accuracy recorded after each)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=FINE_TUNE["lr"],
        help="fine-tuning peak learning rate (Nesterov SGD, cosine decay)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="timed forward passes per latency round (3 rounds "
        "alternating the compressed and uncompressed model)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads for everything but latency (always 1)",
    )
    parser.add_argument(
        "--torchvision",
        action="store_true",
        help="also run full-size vgg16_bn and resnet50",
    )
    parser.add_argument(
        "--torchvision-methods",
        nargs="+",
        default=["tropnnc"],
        help="data-free methods to run on the full-size networks",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=224,
        help="input size of the full-size networks",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["all", "sensitivity", "cumulative"],
        help="parts to skip",
    )
    parser.add_argument(
        "--csv",
        help="prefix of the CSV files (PREFIX_all.csv, PREFIX_sensitivity.csv, "
        "PREFIX_cumulative.csv) to write the rows to, with their provenance",
    )
    args = parser.parse_args(argv)
    if args.ft_epochs < 1 or args.ft_size < 1:
        parser.error("--ft-epochs and --ft-size must be positive")
    torch.set_num_threads(args.threads)
    if args.quick:
        args.test_size, args.ft_size = min(args.test_size, 500), min(args.ft_size, 500)
        args.ft_epochs = min(args.ft_epochs, 2)
        args.keeps, args.sensitivity_keeps = (0.5, 0.25), (0.5,)
    else:
        args.keeps, args.sensitivity_keeps = KEEPS, SENSITIVITY_KEEPS
    start, cpu_start = time.perf_counter(), time.process_time()
    seed_everything(args.seed)
    x, y, source = load_vgg_data(train=False, limit=args.test_size, seed=args.seed)
    calib, _, _ = load_vgg_data(train=True, limit=args.calib_size, seed=1)
    x_ft, y_ft, _ = load_vgg_data(train=True, limit=args.ft_size, seed=2)
    net, entry = load_or_train(CHECKPOINT)
    data = {"test": (x, y), "calib": calib, "ft": (x_ft, y_ft)}
    base = accuracy(net, x, y)
    print(
        f"data: {source.describe()}\ncheckpoint {CHECKPOINT}: trained on "
        f"{entry['data']}\n"
    )
    empty = pd.DataFrame(columns=part1_columns(args))
    part1 = all_layers(net, data, args) if "all" not in args.skip else empty
    sens = (
        sensitivity(net, data, args)
        if "sensitivity" not in args.skip
        else pd.DataFrame(columns=["layer", "keep", "method", "accuracy", "seconds"])
    )
    cum = (
        cumulative(net, data, args)
        if "cumulative" not in args.skip
        else pd.DataFrame(columns=["layers", "method", "accuracy"])
    )
    print_tables(base, part1, sens, cum)
    if args.csv:
        meta = provenance(args, time.perf_counter() - start, [source.name])
        for name, df in (("all", part1), ("sensitivity", sens), ("cumulative", cum)):
            write_csv(df.assign(data=source.name), Path(f"{args.csv}_{name}.csv"), meta)
    if args.torchvision:
        tv = torchvision_table(args)
        print(
            f"\n=== full-size torchvision networks, random weights, input "
            f"{args.image_size}x{args.image_size}, one thread ==="
        )
        print(tv.to_string(index=False, float_format=fmt))
    print(
        f"\ntotal wall time {time.perf_counter() - start:.0f} s, CPU time "
        f"{time.process_time() - cpu_start:.0f} s "
        f"({torch.get_num_threads()} torch threads; test {len(y)} images, "
        f"ThiNet {len(calib)} images, fine-tuning {len(y_ft)} images)"
    )


if __name__ == "__main__":
    main()
