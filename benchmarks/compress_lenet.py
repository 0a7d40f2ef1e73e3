"""Every compression method at every kept fraction on LeNet's fully connected layers.

For LeNet-5 and LeNet-300-100 trained on MNIST and on Fashion-MNIST (the
shipped checkpoints), each method compresses fc1 alone, fc2 alone (the layer
feeding the logits) and both (fc1 then fc2, as ``compress`` does), keeping 50,
25, 10 and 5 % of the neurons, without fine-tuning. It prints the test accuracy
(%) with the data-free methods and the data-driven ones in separate column
groups, then the mean compression wall time of each method, the mean accuracy
per kept fraction, and a tally of who wins. Data-free methods that depend on a
seed (k-means restarts, random draws) are averaged over ``--seeds`` seeds, since
at 5 % a single seed can move the accuracy by several points; the data-driven
columns use one seed. Zonotope K-means is absent: it needs a single-output consumer and
every layer here feeds 84, 100 or 10 outputs.

Run from the repository root::

    python benchmarks/compress_lenet.py            # about 2 minutes on one CPU core
    python benchmarks/compress_lenet.py --quick    # MNIST only, two ratios
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import helpers  # noqa: F401  (must precede torchvision)
from helpers.compress import METHODS, apply_plan, compress
from helpers.data import load_tensors
from helpers.recipes import load_or_train
from helpers.train import evaluate, seed_everything

from common import provenance, write_csv

#: Column -> (method, options). Data-free columns first, then data-driven ones.
DATA_FREE: dict[str, tuple[str, dict[str, Any]]] = {
    "tropnnc": ("tropnnc", {}),
    "trop-raw": ("tropnnc", {"gauge": "raw"}),
    "trop-gen": ("tropnnc", {"gauge": "generator"}),
    "np-kmeans": ("neural_path_kmeans", {}),
    "magnitude": ("magnitude", {}),
    "random": ("random", {}),
}
DATA_DRIVEN: dict[str, tuple[str, dict[str, Any]]] = {
    "thinet": ("thinet", {}),
    "thinet+refit": ("thinet", {"refit": True}),
    "trop+refit": ("tropnnc", {"refit": True}),
    "magn+refit": ("magnitude", {"refit": True}),
}
NETWORKS = {"lenet5": "LeNet-5", "lenet300": "LeNet-300-100"}
DATASETS = {"mnist": "mnist", "fashion": "fashion_mnist"}
KEEPS = (0.5, 0.25, 0.1, 0.05)
#: Data-free columns whose result depends on the seed (averaged over seeds).
SEEDED = ("tropnnc", "trop-raw", "trop-gen", "np-kmeans", "random")


class HeadEvaluator:
    """Test accuracy of LeNets whose fully connected layers alone were compressed.

    Compression here never touches the convolutions, so their output on the
    test images is computed once and each compressed network is evaluated from
    ``fc1`` on (fc1 - ReLU - fc2 - ReLU - fc3, the same arithmetic as its
    forward pass; checked against the full forward pass on construction).
    """

    def __init__(self, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
        seen: list[torch.Tensor] = []
        handle = net.fc1.register_forward_hook(lambda m, i, o: seen.append(i[0]))
        with torch.no_grad():
            net.eval()(x)
        handle.remove()
        self.features, self.y = seen[0], y
        for model in (net, compress(net, "magnitude", 0.25, layers=["fc1", "fc2"])):
            full = 100 * evaluate(model, (x, y))["accuracy"]
            if abs(self(model) - full) > 1e-9:
                raise RuntimeError(
                    "the fully connected head does not reproduce the network's accuracy"
                )

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> float:
        """Accuracy (%) of ``model`` on the test images."""
        h = torch.relu(model.fc1(self.features))
        logits = model.fc3(torch.relu(model.fc2(h)))
        return 100 * float((logits.argmax(1) == self.y).double().mean())


def run_setting(
    net: torch.nn.Module,
    column: str,
    keep: float,
    calib: torch.Tensor,
    test: HeadEvaluator,
    seed: int,
) -> list[dict]:
    """Compress fc1, fc2 and both with one method; return accuracy and time rows."""
    method, options = {**DATA_FREE, **DATA_DRIVEN}[column]
    fn = METHODS[method]
    driven = column in DATA_DRIVEN
    extra = {"data": calib, "reference": net} if driven else {}
    rows = []
    start = time.perf_counter()
    small1 = apply_plan(net, fn(net, "fc1", keep, seed=seed, **extra, **options))
    t1 = time.perf_counter() - start
    start = time.perf_counter()
    small2 = apply_plan(net, fn(net, "fc2", keep, seed=seed, **extra, **options))
    t2 = time.perf_counter() - start
    start = time.perf_counter()  # fc1 then fc2, exactly what compress() does
    both = apply_plan(small1, fn(small1, "fc2", keep, seed=seed, **extra, **options))
    t12 = t1 + time.perf_counter() - start
    for layers, model, seconds in (
        ("fc1", small1, t1),
        ("fc2", small2, t2),
        ("fc1+fc2", both, t12),
    ):
        rows.append(
            {
                "layers": layers,
                "keep": keep,
                "column": column,
                "accuracy": test(model),
                "seconds": seconds,
                "data_driven": driven,
            }
        )
    return rows


def benchmark(
    datasets: list[str],
    keeps: tuple[float, ...],
    test_size: int,
    calib_size: int,
    seed: int,
    seeds: int,
) -> pd.DataFrame:
    """Run every method on every network and return one row per measurement."""
    rows = []
    for ds_key in datasets:
        dataset = DATASETS[ds_key]
        x_test, y_test, source = load_tensors(
            dataset, train=False, limit=test_size, seed=seed
        )
        calib, _, _ = load_tensors(dataset, train=True, limit=calib_size, seed=seed)
        for arch, arch_name in NETWORKS.items():
            seed_everything(seed)
            net, entry = load_or_train(f"{arch}_{ds_key}")
            test = HeadEvaluator(net, x_test, y_test)
            base = test(net)
            columns = list(DATA_FREE) + list(DATA_DRIVEN)
            for keep in keeps:
                for column in columns:
                    runs = range(seed, seed + (seeds if column in SEEDED else 1))
                    for s in runs:
                        for row in run_setting(net, column, keep, calib, test, s):
                            rows.append(
                                {
                                    "dataset": source.name,
                                    "network": arch_name,
                                    "uncompressed": base,
                                    "seed": s,
                                    **row,
                                }
                            )
                print(f"  done: {source.name} {arch_name} keep {keep:.0%}", flush=True)
    return pd.DataFrame(rows)


def print_tables(df: pd.DataFrame) -> None:
    """Accuracy tables (data-free | data-driven), times, and a tally of winners."""
    pd.set_option("display.width", 200)
    for (dataset, network), sub in df.groupby(["dataset", "network"], sort=False):
        base = sub["uncompressed"].iloc[0]
        table = sub.pivot_table(
            index=["layers", "keep"], columns="column", values="accuracy", sort=False
        )
        table.index = [f"{layers} {keep:.0%}" for layers, keep in table.index]
        free = [c for c in DATA_FREE if c in table]
        driven = [c for c in DATA_DRIVEN if c in table]
        shown = table[free].copy()
        shown[" | "] = "|"
        shown = pd.concat([shown, table[driven]], axis=1)
        print(
            f"\n=== {network} on {dataset}: test accuracy (%) without fine-tuning "
            f"(seeded data-free columns: mean over seeds); uncompressed "
            f"{base:.2f} ==="
        )
        print(
            f"    data-free: {', '.join(free)}   |   data-driven: {', '.join(driven)}"
        )
        print(shown.to_string(float_format=lambda v: f"{v:6.2f}"))
    times = df.pivot_table(
        index=["network", "layers"],
        columns="column",
        values="seconds",
        aggfunc="mean",
        sort=False,
    )
    times = times[[c for c in list(DATA_FREE) + list(DATA_DRIVEN) if c in times]]
    print(
        "\n=== mean compression wall time (s) per setting, averaged over datasets "
        "and kept fractions ==="
    )
    print(times.to_string(float_format=lambda v: f"{v:6.2f}"))
    per_keep = df.pivot_table(
        index="keep", columns="column", values="accuracy", sort=False
    )
    per_keep = per_keep[
        [c for c in list(DATA_FREE) + list(DATA_DRIVEN) if c in per_keep]
    ]
    print(
        "\n=== mean test accuracy (%) per kept fraction, over datasets, networks and "
        "layer choices ==="
    )
    print(per_keep.to_string(float_format=lambda v: f"{v:6.2f}"))
    wide = df.pivot_table(
        index=["dataset", "network", "layers", "keep"],
        columns="column",
        values="accuracy",
    )
    n = len(wide)
    print(f"\n=== tally over {n} settings (dataset x network x layers x keep) ===")
    for a, b in [
        ("tropnnc", "magnitude"),
        ("tropnnc", "random"),
        ("tropnnc", "np-kmeans"),
        ("tropnnc", "trop-raw"),
        ("tropnnc", "trop-gen"),
        ("tropnnc", "thinet"),
        ("trop+refit", "thinet+refit"),
        ("trop+refit", "tropnnc"),
    ]:
        if a in wide and b in wide:
            wins = int((wide[a] > wide[b]).sum())
            ties = int((wide[a] == wide[b]).sum())
            print(
                f"  {a:>11s} beats {b:<13s} in {wins:3d} of {n} settings "
                f"({ties} ties); mean difference {(wide[a] - wide[b]).mean():+.2f} "
                "points"
            )


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="MNIST only, keep 25 %% and 5 %%"
    )
    parser.add_argument(
        "--test-size",
        type=int,
        default=2000,
        help="test images per dataset (seeded subset)",
    )
    parser.add_argument(
        "--calib-size",
        type=int,
        default=1024,
        help="training images given to data-driven methods",
    )
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="seeds averaged for the seeded data-free methods",
    )
    parser.add_argument(
        "--csv", help="also write every measurement, with its provenance, to this CSV"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (LeNets are too small to gain from "
        "more; on a shared CPU extra threads slow them down)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    datasets = ["mnist"] if args.quick else list(DATASETS)
    keeps = (0.25, 0.05) if args.quick else KEEPS
    start = time.perf_counter()
    df = benchmark(
        datasets, keeps, args.test_size, args.calib_size, args.seed, args.seeds
    )
    print_tables(df)
    if args.csv:
        meta = provenance(args, time.perf_counter() - start, list(df["dataset"]))
        write_csv(df, Path(args.csv), meta)
    print(
        f"\ntotal wall time {time.perf_counter() - start:.0f} s "
        f"({torch.get_num_threads()} torch threads)"
    )


if __name__ == "__main__":
    main()
