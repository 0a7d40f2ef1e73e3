"""The five-block CNN backbone of the hybrid-head networks and its frozen features.

Each block is conv3x3 + BatchNorm + ReLU + maxpool2; the reference channels are
those of the Sparse-Morph paper (Fotopoulos, Garoufis, Maragos 2025) and other
widths scale them. Heads (:mod:`helpers.hybrid.heads`) train on its features.
"""

from __future__ import annotations

import torch
from torch import nn

from helpers.train import check_positive_int, eval_mode, model_device

#: Channels of the reference backbone (width 1); other widths scale them.
REFERENCE_CHANNELS: tuple[int, ...] = (128, 128, 256, 256, 256)


def backbone_channels(width: float = 1.0) -> tuple[int, ...]:
    """Channels of the five backbone blocks: the reference ones times ``width``."""
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise TypeError(f"width must be a number, got {type(width).__name__}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    return tuple(max(1, round(c * width)) for c in REFERENCE_CHANNELS)


class Backbone(nn.Module):
    """Five blocks [conv3x3 + BN + ReLU + maxpool2] mapping 32x32 images to vectors.

    Inputs are first standardised per channel with the buffers ``input_mean`` and
    ``input_std`` (0 and 1 until :meth:`set_input_stats` fits them to data), so
    the statistics travel with the checkpoint.
    """

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        self.channels = backbone_channels(width)
        self.in_channels = in_channels
        self.register_buffer("input_mean", torch.zeros(in_channels))
        self.register_buffer("input_std", torch.ones(in_channels))
        layers: list[nn.Module] = []
        previous = in_channels
        for c in self.channels:
            layers += [
                nn.Conv2d(previous, c, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            previous = c
        self.features = nn.Sequential(*layers)
        #: Length of the feature vector (the heads' input size ``d``).
        self.out_features = self.channels[-1]

    @torch.no_grad()
    def set_input_stats(self, X: torch.Tensor) -> None:
        """Standardise inputs with the per-channel mean and std of images ``X``."""
        if X.dim() != 4 or X.shape[1] != self.in_channels:
            raise ValueError(
                f"X must have shape (N, {self.in_channels}, H, W), got {tuple(X.shape)}"
            )
        self.input_mean.copy_(X.mean(dim=(0, 2, 3)))
        self.input_std.copy_(X.std(dim=(0, 2, 3)).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, out_features) features of (N, in_channels, 32, 32) images."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[-2:] != (32, 32):
            raise ValueError(
                f"Backbone expects images of shape (N, {self.in_channels}, 32, 32), "
                f"got {tuple(x.shape)}"
            )
        x = (x - self.input_mean[:, None, None]) / self.input_std[:, None, None]
        return self.features(x).flatten(1)


@torch.no_grad()
def extract_features(
    net: nn.Module, X: torch.Tensor, batch_size: int = 512
) -> torch.Tensor:
    """Frozen backbone features of ``X`` in eval mode, batched (heads train on them).

    ``net`` is a :class:`Backbone` or a network holding one as ``net.backbone``
    (a :class:`~helpers.hybrid.heads.HybridNet`).
    """
    backbone = getattr(net, "backbone", net)
    if not isinstance(backbone, Backbone):
        raise TypeError(f"expected a HybridNet or Backbone, got {type(net).__name__}")
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor, got {type(X).__name__}")
    check_positive_int("batch_size", batch_size)
    device = model_device(backbone)
    with eval_mode(backbone):
        parts = [
            backbone(X[i : i + batch_size].to(device)).cpu()
            for i in range(0, X.shape[0], batch_size)
        ]
    if not parts:
        return torch.empty(0, backbone.out_features)
    return torch.cat(parts)
