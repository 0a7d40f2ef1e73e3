"""Make torchvision importable where its compiled operators cannot load.

Some torchvision wheels (for example a CUDA build next to a CPU-only torch)
fail at import with ``RuntimeError: operator torchvision::nms does not exist``:
their C extension does not match the installed torch, and torchvision's import
registers fake kernels for ``nms``/``qnms`` whose schemas only that extension
defines. The book needs only torchvision's pure-Python parts (datasets,
transforms, model definitions), so where the extension fails we define those
two schemas before importing torchvision. Detection operators such as
``torchvision.ops.nms`` then still raise torchvision's own clear error; all
else works. Where the extension loads, this module does nothing.
"""

from __future__ import annotations

import importlib
import sys

import torch

#: True once torchvision had to be imported with the schemas defined here.
USING_STANDINS = False

# The operators torchvision registers fake kernels for unconditionally at import.
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIBRARY: torch.library.Library | None = None  # keeps the definitions alive


def _extension_loads() -> bool:
    """Return True when torchvision imports cleanly (or is not installed at all)."""
    try:
        importlib.import_module("torchvision")
        return True
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        return False
    except ImportError:
        return True  # not installed: the user's own import reports it


def ensure_torchvision() -> bool:
    """Make ``import torchvision`` work; return True if schemas had to be defined."""
    global USING_STANDINS, _LIBRARY
    if "torchvision" in sys.modules or _extension_loads():
        return USING_STANDINS
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _LIBRARY.define(schema)
    importlib.import_module("torchvision")
    USING_STANDINS = True
    return True
