"""Type helpers for V1 nodes: the ``IO`` names, ``ComfyNodeABC`` and the input dict shapes."""
from __future__ import annotations

from abc import ABC
from enum import Enum
from typing import Any, Dict, List, Tuple

try:
    from typing import TypedDict
except ImportError:  # pragma: no cover
    TypedDict = dict  # type: ignore[misc,assignment]


class IO(str, Enum):
    """ComfyUI's io type names; ``IO.ANY`` ("*") matches every type."""

    STRING = "STRING"
    IMAGE = "IMAGE"
    MASK = "MASK"
    LATENT = "LATENT"
    BOOLEAN = "BOOLEAN"
    INT = "INT"
    FLOAT = "FLOAT"
    COMBO = "COMBO"
    CONDITIONING = "CONDITIONING"
    SAMPLER = "SAMPLER"
    SIGMAS = "SIGMAS"
    GUIDER = "GUIDER"
    NOISE = "NOISE"
    CLIP = "CLIP"
    CONTROL_NET = "CONTROL_NET"
    VAE = "VAE"
    MODEL = "MODEL"
    LORA_MODEL = "LORA_MODEL"
    LOSS_MAP = "LOSS_MAP"
    CLIP_VISION = "CLIP_VISION"
    CLIP_VISION_OUTPUT = "CLIP_VISION_OUTPUT"
    STYLE_MODEL = "STYLE_MODEL"
    GLIGEN = "GLIGEN"
    UPSCALE_MODEL = "UPSCALE_MODEL"
    AUDIO = "AUDIO"
    WEBCAM = "WEBCAM"
    POINT = "POINT"
    FACE_ANALYSIS = "FACE_ANALYSIS"
    BBOX = "BBOX"
    SEGS = "SEGS"
    VIDEO = "VIDEO"
    ANY = "*"
    NUMBER = "FLOAT,INT"
    PRIMITIVE = "STRING,FLOAT,INT,BOOLEAN"

    def __ne__(self, value: object) -> bool:
        if self == "*" or value == "*":
            return False
        if not isinstance(value, str):
            return True
        a = frozenset(self.split(","))
        b = frozenset(value.split(","))
        return not (b.issubset(a) or a.issubset(b))

    __hash__ = str.__hash__


class InputTypeOptions(TypedDict, total=False):
    default: Any
    defaultInput: bool
    forceInput: bool
    lazy: bool
    rawLink: bool
    tooltip: str
    min: float
    max: float
    step: float
    round: float
    label_on: str
    label_off: str
    multiline: bool
    placeholder: str
    dynamicPrompts: bool
    image_upload: bool
    image_folder: str
    remote: Dict[str, Any]
    control_after_generate: bool
    options: List[Any]
    display: str


class InputTypeDict(TypedDict, total=False):
    required: Dict[str, Tuple[Any, ...]]
    optional: Dict[str, Tuple[Any, ...]]
    hidden: Dict[str, Tuple[Any, ...]]


class OutputTypeDict(TypedDict, total=False):
    name: str
    type: str
    is_list: bool


class FileLocator(TypedDict):
    filename: str
    subfolder: str
    type: str


class ComfyNodeABC(ABC):
    """Base class V1 nodes may derive from; the class attributes ComfyUI reads."""

    DESCRIPTION: str
    CATEGORY: str
    EXPERIMENTAL: bool
    DEPRECATED: bool
    RETURN_TYPES: Tuple[Any, ...]
    RETURN_NAMES: Tuple[str, ...]
    OUTPUT_TOOLTIPS: Tuple[str, ...]
    FUNCTION: str
    OUTPUT_NODE: bool
    INPUT_IS_LIST: bool
    OUTPUT_IS_LIST: Tuple[bool, ...]

    @classmethod
    def INPUT_TYPES(cls) -> InputTypeDict:  # noqa: N802
        return {"required": {}}


class CheckLazyMixin:
    """Default ``check_lazy_status``: every input still None is needed."""

    def check_lazy_status(self, **kwargs: Any) -> List[str]:
        return [name for name, value in kwargs.items() if value is None]
