"""Hybrid linear-morphological classifier heads on a small CNN (Sparse-Morph).

A five-block CNN backbone feeds one of four heads (Fotopoulos, Garoufis, Maragos
2025). One module per job:

* :mod:`~helpers.hybrid.backbone`: the CNN backbone and its frozen features;
* :mod:`~helpers.hybrid.heads`: the four heads, :class:`HybridNet`, head sizes
  and accuracy on features;
* :mod:`~helpers.hybrid.pruning`: L1 pruning with matched parameter budgets,
  BatchNorm recalibration and fine-tuning with the pruning pattern fixed;
* :mod:`~helpers.hybrid.units`: max-plus units that never win, and their removal;
* :mod:`~helpers.hybrid.weights`: near-zero weight shares and drift;
* :mod:`~helpers.hybrid.training`: the reference protocol and its configurations;
* :mod:`~helpers.hybrid.experiment`: the reference train-then-prune experiment;
* :mod:`~helpers.hybrid.recipes`: the shipped checkpoints' recipes (importing the
  package registers them).

The names below are re-exported so that ``from helpers import hybrid`` reaches
them all.
"""

from helpers.hybrid.backbone import (
    REFERENCE_CHANNELS,
    Backbone,
    backbone_channels,
    extract_features,
)
from helpers.hybrid.experiment import REFERENCE_ACCURACY, train_and_prune
from helpers.hybrid.heads import (
    HEAD_LABELS,
    HEADS,
    HybridNet,
    MaxoutHead,
    MaxPlusHead,
    ReLUHead,
    accuracy_on_features,
    first_linears,
    head_kind,
    head_parameters,
    head_sizes,
    make_head,
)
from helpers.hybrid.pruning import (
    PRUNING_RATIOS,
    fine_tune_pruned,
    first_stage_parameters,
    last_layer_weights,
    parameter_budget,
    prune_head,
    pruning_grid,
    recalibrate_batchnorm,
)
from helpers.hybrid.recipes import checkpoint_name
from helpers.hybrid.training import (
    REFERENCE_CONFIG,
    SEED,
    SEEDS,
    SMALL_CONFIG,
    SUBSTITUTE,
    HybridConfig,
    build_net,
    load_data,
    split_train_val,
    train_net,
)
from helpers.hybrid.units import maxplus_usage, remove_units
from helpers.hybrid.weights import near_zero_by_layer, near_zero_fraction, row_drift

__all__ = [
    "HEADS",
    "HEAD_LABELS",
    "PRUNING_RATIOS",
    "REFERENCE_ACCURACY",
    "REFERENCE_CHANNELS",
    "REFERENCE_CONFIG",
    "SEED",
    "SEEDS",
    "SMALL_CONFIG",
    "SUBSTITUTE",
    "Backbone",
    "HybridConfig",
    "HybridNet",
    "MaxPlusHead",
    "MaxoutHead",
    "ReLUHead",
    "accuracy_on_features",
    "backbone_channels",
    "build_net",
    "checkpoint_name",
    "extract_features",
    "fine_tune_pruned",
    "first_linears",
    "first_stage_parameters",
    "head_kind",
    "head_parameters",
    "head_sizes",
    "last_layer_weights",
    "load_data",
    "make_head",
    "maxplus_usage",
    "near_zero_by_layer",
    "near_zero_fraction",
    "parameter_budget",
    "prune_head",
    "pruning_grid",
    "recalibrate_batchnorm",
    "remove_units",
    "row_drift",
    "split_train_val",
    "train_and_prune",
    "train_net",
]
