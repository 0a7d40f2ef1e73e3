"""The results table's benchmark runs end to end on a tiny slice (``--quick``)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import helpers  # noqa: F401

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

#: The columns chapter 10 reads.
CHAPTER_COLUMNS = [
    "model",
    "method",
    "data used",
    "keep",
    "accuracy",
    "fine-tuned",
    "params",
    "FLOPs",
    "latency ms",
    "compress s",
]


@pytest.fixture(scope="module")
def results_table():
    """The benchmark module, imported as a script is (beside ``common``)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import results_table

        yield results_table
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def table(results_table, tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """The max-plus and hybrid parts on 100 test images, written to a CSV."""
    path = tmp_path_factory.mktemp("results") / "table.csv"
    argv = ["--quick", "--parts", "maxplus", "hybrid", "--test-size", "100"]
    argv += ["--ft-size", "64", "--calib-size", "128", "--repeats", "1"]
    argv += ["--rounds", "1", "--csv", str(path)]
    threads = torch.get_num_threads()
    try:
        return results_table.main(argv), path
    finally:
        torch.set_num_threads(threads)  # the benchmark sets its own


def test_quick_table_has_every_column_and_the_csv_agrees(table):
    df, path = table
    assert set(CHAPTER_COLUMNS) <= set(df.columns)
    assert "latency %" in df.columns
    on_disk = pd.read_csv(path, comment="#")
    assert list(on_disk.columns) == list(df.columns) and len(on_disk) == len(df)
    numeric = ["accuracy", "params", "FLOPs", "latency ms", "latency %"]
    assert df[numeric].notna().all().all()
    compressed = df[df["method"] != "uncompressed"]
    assert compressed["fine-tuned"].notna().all()
    assert (df.loc[df["method"] == "uncompressed", "latency %"] == 100).all()


def test_maxplus_rows_count_kept_filters_and_pairs(table, results_table):
    df, _ = table
    rows = df[df["model"] == results_table.MAXPLUS].set_index("method")
    assert set(rows.index) == {
        "uncompressed",
        "count rule",
        "top-k by wins",
        "weight rule",
        "random k",
    }
    assert not rows.loc["weight rule", "data used"]
    assert rows.loc["count rule", "data used"]
    k = 16  # 25 % of 64 filters, every class sees every kept one
    top = rows.loc["top-k by wins"]
    assert top["keep"] == k / 64 and top["setting"] == f"k {k}"
    assert top["params"] == k * 784 + k * 10
    assert top["FLOPs"] == 2 * (k * 784 + k * 10)
    base = rows.loc["uncompressed"]
    assert base["params"] == 64 * 784 + 64 * 10 and base["FLOPs"] == 2 * base["params"]
    # same architecture (k filters, every pair live): one shared measurement
    assert rows.loc["random k", "latency ms"] == top["latency ms"]


def test_hybrid_rows_count_nonzero_work_and_share_latency(table):
    df, _ = table
    hybrid = df[df["model"].str.startswith("hybrid_")]
    assert len(hybrid) == 8  # four heads: uncompressed and one ratio in quick mode
    for _, part in hybrid.groupby("model"):
        base = part[part["method"] == "uncompressed"].iloc[0]
        pruned = part[part["method"] == "L1 unstructured"].iloc[0]
        assert pruned["FLOPs"] < 0.25 * base["FLOPs"]
        assert pruned["params"] < 0.25 * base["params"]
        assert not math.isnan(pruned["fine-tuned"])
    relu = hybrid[hybrid["model"].str.contains("relu")]
    assert relu["latency ms"].nunique() == 1  # zeros in the same dense tensors
    assert (relu["latency %"] == 100).all()
