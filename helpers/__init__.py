"""Reusable code of the book *Tropical Neural Network Compression*.

Importing ``helpers`` first makes ``import torchvision`` safe on machines whose
torchvision C extension does not match the installed torch (see ``_compat``).
"""

from helpers._compat import ensure_torchvision

ensure_torchvision()

__all__ = ["ensure_torchvision"]
__version__ = "0.1.0"
