"""Does the statistics-only correction close TropNNC's gap to the data-driven refit?

Data-free TropNNC merges channels and leaves the consumer's bias alone; the
mean of the consumer's input shifts. Two fixes move that bias:

* ``+bias``: the data-driven refit (``refit="bias"``), which measures the
  shift on sample training images;
* ``+stats``: the statistics-only correction (``correct="stats"``), which
  predicts it from BatchNorm's running statistics (VGG) or from the per-unit
  statistics recorded once with each LeNet checkpoint, never reading a sample.

Settings: each convolution of the shipped VGG alone at keep 25 % and 10 %; all
of the VGG's compressible layers at once, at the smallest kept fraction of
(90, 75, 50, 35, 25 %) where data-free TropNNC still reaches twice chance accuracy;
LeNet-5 and LeNet-300-100 on MNIST and Fashion-MNIST with fc1, fc2 and both at
10 % (mean over ``--seeds`` k-means seeds; VGG settings use one). For each it
prints the test accuracy of TropNNC, +stats and +bias, the
fraction of the gap (+bias minus TropNNC) that +stats recovers, and the
tally: in how many settings with a gap of at least half a point +stats
recovers at least half of it. It also checks the bias refit itself: applied
layer after layer it should not be worse than no correction.

Run from the repository root::

    python benchmarks/stats_correction.py record-stats   # LeNet statistics files
    python benchmarks/stats_correction.py --csv results/stats_correction.csv
    python benchmarks/stats_correction.py --quick        # fewer settings, images
"""

from __future__ import annotations

import argparse
import datetime
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
    record,
)
from helpers.compress.stats_correction import (
    file_sha256,
    record_unit_stats,
    save_unit_stats,
)
from helpers.data import load_tensors, load_vgg_data
from helpers.models import conv_names
from helpers.recipes import load_or_train
from helpers.train import checkpoint_dir, seed_everything

from common import SuffixEvaluator, provenance, write_csv

VGG = "vgg_cifar_w025"
LENETS = {
    "lenet5_mnist": "mnist",
    "lenet300_mnist": "mnist",
    "lenet5_fashion": "fashion_mnist",
    "lenet300_fashion": "fashion_mnist",
}
LENET_LAYERS = ("fc1", "fc2")
#: Variant -> compress() options (``+bias`` also gets the calibration images).
VARIANTS: dict[str, dict[str, Any]] = {
    "tropnnc": {},
    "+stats": {"correct": "stats"},
    "+bias": {"refit": "bias"},
}
#: Gaps smaller than this (accuracy points) are reported but left out of the tally.
MIN_GAP = 0.5
UNIFORM_KEEPS = (0.9, 0.75, 0.5, 0.35, 0.25)


def stats_path(name: str) -> Path:
    """Where the per-unit statistics recorded with checkpoint ``name`` live."""
    return checkpoint_dir() / f"{name}.stats.json"


def lenet_stats(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The statistics file of a LeNet checkpoint, checked against its hash."""
    return load_unit_stats(stats_path(name), checkpoint_dir() / f"{name}.pt")


def record_lenet_stats() -> None:
    """Record per-unit pre-activation mean/std over each LeNet's training set."""
    for name, dataset in LENETS.items():
        net, entry = load_or_train(name)
        x, _, source = load_tensors(dataset, train=True)
        layers = hidden_layers(net)
        stats = record_unit_stats(net, layers, x, max_samples=len(x))
        provenance = {
            "what": (
                "mean and standard deviation of each unit's pre-activation "
                "(per channel over positions for convolutions) over the "
                "training set, recorded once with the checkpoint like "
                "BatchNorm's running statistics"
            ),
            "checkpoint": f"{name}.pt",
            "checkpoint_sha256": file_sha256(checkpoint_dir() / f"{name}.pt"),
            "data": source.describe(),
            "images": len(x),
            "layers": layers,
            "command": "python benchmarks/stats_correction.py record-stats",
            "torch": torch.__version__,
            "date": datetime.date.today().isoformat(),
        }
        save_unit_stats(stats_path(name), stats, provenance)
        print(
            f"{name}: wrote {stats_path(name).name} ({len(x):,} images, layers "
            f"{layers})"
        )


class LeNetHead:
    """Accuracy of LeNets whose fully connected layers alone changed.

    The input of ``fc1`` on the test images is computed once; each model runs
    fc1-ReLU-fc2-ReLU-fc3 from there (checked against the full forward pass).
    """

    def __init__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor):
        seen: list[torch.Tensor] = []
        handle = net.fc1.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
        with torch.no_grad():
            full = net.eval()(x).argmax(1)
        handle.remove()
        self.features, self.y = seen[0], y
        if abs(self(net) - 100 * float((full == y).double().mean())) > 1e-9:
            raise RuntimeError("the head does not reproduce the network's accuracy")

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> float:
        """Test accuracy (%) of ``model``."""
        h = torch.relu(model.fc2(torch.relu(model.fc1(self.features))))
        return 100 * float((model.fc3(h).argmax(1) == self.y).double().mean())


def add_gap(df: pd.DataFrame) -> pd.DataFrame:
    """The gap (+bias minus tropnnc), the fraction +stats recovers, tally columns."""
    df = df.copy()
    df["gap"] = df["+bias"] - df["tropnnc"]
    df["recovered"] = (df["+stats"] - df["tropnnc"]) / df["gap"].where(
        df["gap"] >= MIN_GAP
    )
    df["counted"] = df["gap"] >= MIN_GAP
    df["half closed"] = df["counted"] & (df["recovered"] >= 0.5)
    df["bias >= plain"] = df["+bias"] >= df["tropnnc"]
    return df


@torch.no_grad()
def consumer_mean(model: nn.Module, consumer: str, x: torch.Tensor) -> np.ndarray:
    """Mean output of ``consumer`` per output unit (over images and positions)."""
    ((_, out),) = record(model, consumer, [x], "output")
    out = out.double()
    dims = [0] + list(range(2, out.ndim))
    return out.mean(dim=dims).numpy()


def shift_correlation(
    net: nn.Module,
    layer: str,
    keep: float,
    x: torch.Tensor,
    options: dict[str, Any],
    seed: int,
) -> float:
    """Pearson correlation of predicted and measured consumer mean shifts."""
    _, (plan,) = compress_with_plans(
        net, "tropnnc", keep, layers=[layer], seed=seed, correct="stats", **options
    )
    small = compress(net, "tropnnc", keep, layers=[layer], seed=seed)
    measured = consumer_mean(net, plan.consumer, x) - consumer_mean(
        small, plan.consumer, x
    )
    predicted = plan.info["predicted_shift"]
    if measured.std() == 0 or predicted.std() == 0:
        return float("nan")
    return float(np.corrcoef(predicted, measured)[0, 1])


def run_setting(
    net: nn.Module,
    layers: list[str],
    keep: float,
    test: Any,
    calib: torch.Tensor,
    options: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Accuracy (%) and compression time (s) of each variant for one setting."""
    row: dict[str, Any] = {}
    for variant, extra in VARIANTS.items():
        opts = {**extra, **(options if variant == "+stats" else {})}
        data = calib if variant == "+bias" else None
        start = time.perf_counter()
        small = compress(
            net, "tropnnc", keep, layers=layers, data=data, seed=seed, **opts
        )
        row[f"{variant} s"] = time.perf_counter() - start
        row[variant] = test(small)
    return row


def lenet_part(args: argparse.Namespace) -> pd.DataFrame:
    """LeNet settings: fc1, fc2 and both at 10 %, four checkpoints."""
    rows = []
    names = list(LENETS)[:2] if args.quick else list(LENETS)
    for name in names:
        dataset = LENETS[name]
        x, y, source = load_tensors(
            dataset, train=False, limit=args.test_size, seed=args.seed
        )
        calib, _, _ = load_tensors(dataset, train=True, limit=args.calib_size, seed=1)
        net, _ = load_or_train(name)
        stats = {"stats": lenet_stats(name)}
        test = LeNetHead(net, x, y)
        base = test(net)
        for layers in (["fc1"], ["fc2"], ["fc1", "fc2"]):
            runs = [
                run_setting(net, layers, args.lenet_keep, test, calib, stats, s)
                for s in range(args.seed, args.seed + args.seeds)
            ]
            row = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            corr = (
                shift_correlation(
                    net,
                    layers[0],
                    args.lenet_keep,
                    x[: args.corr_size],
                    stats,
                    args.seed,
                )
                if len(layers) == 1
                else float("nan")
            )
            rows.append(
                {
                    "model": name,
                    "data": source.name,
                    "layers": "+".join(layers),
                    "keep": args.lenet_keep,
                    "uncompressed": base,
                    **row,
                    "shift corr": corr,
                }
            )
            print(
                f"  {name} {'+'.join(layers)}: "
                + ", ".join(f"{v} {row[v]:.2f}" for v in VARIANTS),
                flush=True,
            )
    return pd.DataFrame(rows)


def vgg_part(args: argparse.Namespace) -> pd.DataFrame:
    """VGG settings: each conv alone at 25 % and 10 %; all layers at one fraction."""
    x, y, source = load_vgg_data(train=False, limit=args.test_size, seed=args.seed)
    calib, _, _ = load_vgg_data(train=True, limit=args.calib_size, seed=1)
    net, _ = load_or_train(VGG)
    options = {"input_shape": tuple(x.shape[1:])}
    convs = conv_names(net.cfg)
    if args.quick:
        convs = convs[::4]
    rows = []
    for layer in convs:
        test = SuffixEvaluator(net, layer, x, y)
        base = test(net)
        for keep in args.vgg_keeps:
            row = run_setting(net, [layer], keep, test, calib, options, args.seed)
            corr = shift_correlation(
                net, layer, keep, x[: args.corr_size], options, args.seed
            )
            rows.append(
                {
                    "model": VGG,
                    "data": source.name,
                    "layers": layer,
                    "keep": keep,
                    "uncompressed": base,
                    **row,
                    "shift corr": corr,
                }
            )
            print(
                f"  {layer} {keep:.0%}: "
                + ", ".join(f"{v} {row[v]:.2f}" for v in VARIANTS)
                + f", corr {corr:.2f}",
                flush=True,
            )
    test = SuffixEvaluator(net, convs[0], x, y)
    base = test(net)
    every = hidden_layers(net)
    chosen: dict[str, Any] | None = None
    for keep in UNIFORM_KEEPS:
        small = compress(net, "tropnnc", keep, layers=every, seed=args.seed)
        acc = test(small)
        print(f"  all {len(every)} layers at {keep:.0%}: TropNNC {acc:.2f}", flush=True)
        if acc < 2 * 100 / 10:
            break
        chosen = {"keep": keep}
    if chosen is not None:
        row = run_setting(net, every, chosen["keep"], test, calib, options, args.seed)
        rows.append(
            {
                "model": VGG,
                "data": source.name,
                "layers": f"all {len(every)}",
                "keep": chosen["keep"],
                "uncompressed": base,
                **row,
                "shift corr": float("nan"),
            }
        )
        print(
            f"  all layers {chosen['keep']:.0%}: "
            + ", ".join(f"{v} {row[v]:.2f}" for v in VARIANTS),
            flush=True,
        )
    else:
        print("  all layers: TropNNC is below twice chance at every fraction tried")
    return pd.DataFrame(rows)


def tally(df: pd.DataFrame) -> dict[str, Any]:
    """Counts for the acceptance line: half the gap recovered in 2/3 of settings."""
    counted = int(df["counted"].sum())
    closed = int(df["half closed"].sum())
    return {
        "settings": len(df),
        "counted": counted,
        "half closed": closed,
        "needed": int(np.ceil(2 * counted / 3)),
        "met": counted > 0 and closed >= 2 * counted / 3,
        "bias worse": int((~df["bias >= plain"]).sum()),
    }


def print_report(df: pd.DataFrame) -> None:
    """The per-setting table and the tally."""
    pd.set_option("display.width", 200)
    shown = df[
        [
            "model",
            "layers",
            "keep",
            "uncompressed",
            "tropnnc",
            "+stats",
            "+bias",
            "gap",
            "recovered",
            "shift corr",
        ]
    ]
    print("\n=== test accuracy (%) of TropNNC, +stats (data-free) and +bias (data) ===")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:7.2f}"))
    t = tally(df)
    print(
        f"\n=== tally: +stats recovers at least half of the gap in {t['half closed']}"
        f" of {t['counted']} settings with a gap of at least {MIN_GAP} points "
        f"(needed: {t['needed']}; {t['settings'] - t['counted']} settings with a "
        f"smaller gap left out): {'MET' if t['met'] else 'NOT MET'} ==="
    )
    print(
        f"    the bias refit is worse than no correction in {t['bias worse']} of "
        f"{t['settings']} settings"
    )
    corr = df.dropna(subset=["shift corr"])
    if len(corr):
        print(
            f"    predicted vs measured shift: median correlation "
            f"{corr['shift corr'].median():.2f} over {len(corr)} single layers"
        )


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "record-stats"]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every fourth conv, two LeNets, 500 test images",
    )
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument(
        "--calib-size",
        type=int,
        default=1024,
        help="training images given to the bias refit",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--corr-size",
        type=int,
        default=1000,
        help="test images on which the mean shift is measured",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="k-means seeds averaged on the (cheap) LeNet settings",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--parts", nargs="+", default=["lenet", "vgg"], choices=["lenet", "vgg"]
    )
    parser.add_argument("--csv", type=Path, help="write the rows to this CSV")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    if args.command == "record-stats":
        record_lenet_stats()
        return pd.DataFrame()
    if args.quick:
        args.test_size = min(args.test_size, 500)
    args.vgg_keeps, args.lenet_keep = (0.25, 0.1), 0.1
    start = time.perf_counter()
    parts = []
    if "lenet" in args.parts:
        parts.append(lenet_part(args))
    if "vgg" in args.parts:
        parts.append(vgg_part(args))
    df = add_gap(pd.concat(parts, ignore_index=True))
    print_report(df)
    seconds = time.perf_counter() - start
    if args.csv:
        write_csv(df, args.csv, provenance(args, seconds, list(df["data"])))
    print(f"\ntotal wall time {seconds:.0f} s ({torch.get_num_threads()} threads)")
    return df


if __name__ == "__main__":
    main()
