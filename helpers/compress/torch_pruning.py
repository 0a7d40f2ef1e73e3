"""Torch-Pruning's structured pruning at exactly the channel counts of :func:`compress`.

Torch-Pruning (Fang et al. 2023, ``pip install torch-pruning==1.6.1``) is the
library practitioners reach for. :func:`torch_pruning_compress` runs its
``MetaPruner`` (local ranking, one step) with one of three importance criteria
on the layers that :func:`helpers.compress.compress` compresses by default, and
keeps in each exactly :func:`~helpers.compress.surgery.n_keep` channels, so
that the book's methods and the library's compare at equal shapes:

* ``"tp_l1"``: ``MagnitudeImportance(p=1)``. Torch-Pruning scores a channel by
  its whole dependency group, not by the filter alone: the L1 norm of the
  producer's filter, plus ``|gamma|`` of its BatchNorm, plus the L1 norm of the
  consumer's input slice, averaged over these three terms (``group_reduction=
  "mean"``) and divided by the layer's mean score (``normalizer="mean"``, which
  does not change the ranking within a layer).
* ``"tp_bn_scale"``: ``BNScaleImportance``, Network Slimming's ``|gamma|`` of the
  BatchNorm after the layer (Liu et al. 2017); a layer without BatchNorm has no
  score and would not be pruned (reported as an error).
* ``"tp_fpgm"``: ``FPGMImportance``, filters near the geometric median (He et al.
  2019): a channel's score is the sum of its Euclidean distances to the other
  channels, averaged over the producer's filters and the consumer's input
  slices (BatchNorm is not read); the most central go. Torch-Pruning 1.6
  measures the distances between elementwise *squared* weights ``|w|**2``
  (``p=2``), not between the raw filters of the paper.

BatchNorm, as Torch-Pruning's ``BatchnormPruner.prune_out_channels`` does it:
the BatchNorm after a pruned layer is kept and restricted to the kept channels
(``num_features``, ``running_mean``, ``running_var``, ``weight`` and ``bias``
indexed by them, nothing recomputed). A removed channel's constant
contribution to the consumer (its ReLU of the BatchNorm shift) is dropped, not
folded into the consumer's bias: pruning is selection only.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from helpers.compress.surgery import check_keep, hidden_layers, n_keep

#: Criterion name -> (Torch-Pruning importance class, its keyword arguments).
CRITERIA: dict[str, tuple[str, dict[str, Any]]] = {
    "tp_l1": ("MagnitudeImportance", {"p": 1}),
    "tp_bn_scale": ("BNScaleImportance", {}),
    "tp_fpgm": ("FPGMImportance", {}),
}
INSTALL_HINT = "pip install torch-pruning==1.6.1"


def import_torch_pruning() -> Any:
    """The ``torch_pruning`` module, imported on first use (an optional dependency)."""
    try:
        import torch_pruning
    except ImportError as err:
        raise ImportError(
            f"the Torch-Pruning comparison needs the torch-pruning package: "
            f"{INSTALL_HINT}"
        ) from err
    return torch_pruning


def default_example_inputs(model: nn.Module) -> torch.Tensor:
    """One dummy input for tracing: 32x32 images for a conv net, else a vector."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return torch.randn(1, module.in_channels, 32, 32)
        if isinstance(module, nn.Linear):
            return torch.randn(1, module.in_features)
    raise ValueError("the model has no Conv2d or Linear layer to prune")


def ratio_for(n: int, kept: int) -> float:
    """Pruning ratio that makes Torch-Pruning keep ``kept`` of ``n`` channels.

    Torch-Pruning keeps ``int(n * (1 - ratio))`` channels (a floor), while the
    book's ``n_keep`` rounds; asking for ``kept + 0.5`` channels puts the floor
    half a channel away from either neighbour, so float error cannot move it.
    """
    return 0.0 if kept >= n else 1.0 - (kept + 0.5) / n


def _out_channels(module: nn.Module) -> int:
    """Output channels of a Conv2d or units of a Linear layer."""
    if isinstance(module, nn.Conv2d):
        return module.out_channels
    if isinstance(module, nn.Linear):
        return module.out_features
    raise TypeError(f"only Conv2d and Linear layers are pruned, got {module}")


def torch_pruning_compress(
    model: nn.Module,
    criterion: str,
    keep: float,
    layers: list[str] | None = None,
    example_inputs: torch.Tensor | None = None,
) -> nn.Module:
    """A copy of ``model`` pruned by Torch-Pruning with ``criterion`` at ``keep``.

    ``criterion`` is one of :data:`CRITERIA`; ``layers`` names the layers whose
    outputs shrink (default: :func:`hidden_layers`, those that ``compress``
    compresses; each named layer must be one of them), each to
    ``n_keep(n, keep)`` channels. Every other Conv2d and Linear layer, the final
    classifier included, is an ignored layer (only its inputs follow its
    producer). ``example_inputs`` traces the dependency graph (default: one
    random 32x32 image, or a vector for an MLP). The input model is untouched;
    the copy is returned in eval mode. Raises ValueError for an unknown
    criterion or layer and RuntimeError when the pruned counts differ from
    ``n_keep``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if criterion not in CRITERIA:
        raise ValueError(
            f"unknown Torch-Pruning criterion {criterion!r}; choose one of "
            f"{sorted(CRITERIA)}"
        )
    check_keep(keep)
    tp = import_torch_pruning()
    pruned = copy.deepcopy(model).eval()
    allowed = hidden_layers(pruned)
    if layers is None:
        names = allowed
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        outside = [name for name in names if name not in allowed]
        if outside:
            raise ValueError(
                f"layers {outside} are not compressible hidden layers (the final "
                f"classifier always stays); choose among {allowed}"
            )
    modules = dict(pruned.named_modules())
    targets = {name: modules[name] for name in names}
    targets_ids = {id(m) for m in targets.values()}
    wanted = {name: n_keep(_out_channels(m), keep) for name, m in targets.items()}
    ignored = [
        m
        for m in pruned.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in targets_ids
    ]
    ratios = {m: ratio_for(_out_channels(m), wanted[n]) for n, m in targets.items()}
    if example_inputs is None:
        example_inputs = default_example_inputs(pruned)
    cls_name, kwargs = CRITERIA[criterion]
    importance = getattr(tp.importance, cls_name)(**kwargs)
    pruner = tp.pruner.MetaPruner(
        pruned,
        example_inputs,
        importance=importance,
        pruning_ratio=0.0,
        pruning_ratio_dict=ratios,
        ignored_layers=ignored,
    )
    pruner.step()
    got = {name: _out_channels(m) for name, m in targets.items()}
    if got != wanted:
        wrong = {n: (got[n], wanted[n]) for n in names if got[n] != wanted[n]}
        raise RuntimeError(
            f"Torch-Pruning ({criterion}) kept other channel counts than n_keep "
            f"(layer: (kept, wanted)): {wrong}"
        )
    return pruned.eval()
