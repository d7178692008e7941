"""torch and numpy, seen without importing them.

The runtime never imports torch or numpy on its own: a value can only be a tensor or an
array when its library is already loaded, so the predicates look in ``sys.modules``. The
importers load the library only when a tensor or array actually arrives.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["import_numpy", "import_torch", "is_ndarray", "is_numpy_scalar", "is_torch_tensor"]


def import_torch() -> Any:
    """The torch module, imported now if it is not loaded yet."""
    torch = sys.modules.get("torch")
    if torch is None:
        import torch  # noqa: PLC0415 - imported only when a tensor is actually decoded
    return torch


def import_numpy() -> Any:
    """The numpy module, imported now if it is not loaded yet."""
    np = sys.modules.get("numpy")
    if np is None:
        import numpy as np  # noqa: PLC0415 - imported only when an array is actually decoded
    return np


def is_torch_tensor(v: Any) -> bool:
    """Whether ``v`` is a ``torch.Tensor`` (False while torch is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


def is_ndarray(v: Any) -> bool:
    """Whether ``v`` is a ``numpy.ndarray`` (False while numpy is not loaded)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(v, np.ndarray)


def is_numpy_scalar(v: Any) -> bool:
    """Whether ``v`` is a numpy scalar (``numpy.generic``; False while numpy is not loaded)."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(v, np.generic)
