"""ComfyUI's V1 typing helpers: ``from comfy.comfy_types import IO, ComfyNodeABC, InputTypeDict``."""
from .node_typing import (  # noqa: F401
    IO,
    CheckLazyMixin,
    ComfyNodeABC,
    FileLocator,
    InputTypeDict,
    InputTypeOptions,
    OutputTypeDict,
)

__all__ = ["IO", "CheckLazyMixin", "ComfyNodeABC", "FileLocator", "InputTypeDict", "InputTypeOptions", "OutputTypeDict"]
