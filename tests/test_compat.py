"""The torchvision shim: a no-op where the extension loads, a fix where it does not."""

import subprocess
import sys

import torch

import helpers
import helpers._compat as compat


def test_shim_matches_a_bare_import():
    """Stand-ins are used exactly when a bare ``import torchvision`` fails."""
    bare = subprocess.run(
        [sys.executable, "-c", "import torchvision"], capture_output=True, text=True
    )
    if bare.returncode == 0:
        assert compat.USING_STANDINS is False
    else:
        assert "torchvision::" in bare.stderr
        assert compat.USING_STANDINS is True


def test_torchvision_parts_the_book_uses_work():
    """Datasets, transforms and model definitions import and run after the shim."""
    import torchvision
    from torchvision import datasets, models, transforms

    assert helpers.ensure_torchvision() == compat.USING_STANDINS
    x = transforms.Pad(2)(torch.zeros(1, 28, 28))
    assert x.shape == (1, 32, 32)
    net = models.resnet18(num_classes=10).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert datasets.MNIST.__name__ == "MNIST"
    assert torchvision.__version__


def test_detection_ops_fail_clearly_without_the_extension():
    """Without the compiled extension, torchvision.ops.nms raises a clear error."""
    import pytest
    import torchvision

    if not compat.USING_STANDINS:
        pytest.skip("the compiled extension loads here")
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(RuntimeError, match="C\\+\\+ ops"):
        torchvision.ops.nms(boxes, torch.tensor([1.0]), 0.5)
