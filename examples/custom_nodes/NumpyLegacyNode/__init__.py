"""NumpyLegacyNode: a V1-style node pack pinned to numpy 1.26.4.

It runs in its own environment, next to NumpyModernNode (numpy >= 2.1): each sees its own
numpy. ``np.float_`` exists only before numpy 2, so these nodes would fail in a numpy 2
environment.
"""
import numpy as np
import torch


class NumpyLegacyVersion:
    """Reports the numpy this pack's environment has (as an output node, it shows it too)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("numpy_version",)
    FUNCTION = "version"
    OUTPUT_NODE = True
    CATEGORY = "pyisolate/examples"
    DESCRIPTION = "The numpy version of this pack's environment (1.26.4)."

    def version(self):
        return {"ui": {"text": [np.__version__]}, "result": (np.__version__,)}


class NumpyLegacyInvert:
    """Inverts an image with numpy 1.x arithmetic (``np.float_``, gone in numpy 2)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE",),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
            }
        }

    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("image", "numpy_version")
    FUNCTION = "invert"
    CATEGORY = "pyisolate/examples"

    def invert(self, image, strength):
        pixels = image.cpu().numpy().astype(np.float_)
        inverted = pixels + strength * (1.0 - 2.0 * pixels)
        return (torch.from_numpy(inverted.astype(np.float32)), np.__version__)


NODE_CLASS_MAPPINGS = {"NumpyLegacyVersion": NumpyLegacyVersion, "NumpyLegacyInvert": NumpyLegacyInvert}
NODE_DISPLAY_NAME_MAPPINGS = {"NumpyLegacyVersion": "Numpy Version (1.x)", "NumpyLegacyInvert": "Invert Image (numpy 1.x)"}
