"""ImageTools: a shared pack (no manifest), so it runs in the shared Python process on the
host environment. V1 API. It loads, makes, inspects and saves images and shows text; the
isolated example packs process what it makes.

PNG files are read and written by ``png.py`` (standard library only), so the pack needs no
Pillow. Pixel conversions follow ComfyUI's LoadImage / SaveImage: 8-bit samples become
``k / 255`` in float32, and saving truncates ``clamp(255 * v, 0, 255)`` to uint8.
"""
import hashlib
import json
import os

import folder_paths
import torch

from .png import encode_png, read_png

# k / 255 as float32, for k in 0..255 (exactly what ComfyUI's `np.float32(k) / 255.0` gives).
_UNIT = torch.tensor([k / 255.0 for k in range(256)], dtype=torch.float32)


def _to_rgb(decoded):
    """``(image [1, H, W, 3], mask [1, H, W])`` of a decoded PNG; mask is ``1 - alpha``."""
    h, w, c = decoded.height, decoded.width, decoded.channels
    samples = _UNIT[torch.frombuffer(bytearray(decoded.pixels), dtype=torch.uint8).long()].reshape(h, w, c)
    if c in (1, 2):
        rgb = samples[..., :1].expand(h, w, 3)
    else:
        rgb = samples[..., :3]
    if c in (2, 4):
        mask = 1.0 - samples[..., -1]
    else:
        mask = torch.zeros((h, w), dtype=torch.float32)
    return rgb.contiguous().unsqueeze(0), mask.unsqueeze(0)


def _tobytes(samples):
    """The bytes of a uint8 tensor, row-major."""
    try:
        return samples.numpy().tobytes()
    except (ImportError, RuntimeError):  # torch without numpy
        return bytes(samples.flatten().tolist())


class LoadImageFile:
    """Loads a PNG from the input folder (``image.png``, or ``name.png [output]`` and such)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("STRING", {"default": "example.png"})}}

    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")
    FUNCTION = "load"
    CATEGORY = "pyisolate/examples/image"
    DESCRIPTION = "Loads an 8-bit PNG from the input folder; the mask is 1 - alpha (zeros without alpha)."

    def load(self, image):
        decoded = read_png(folder_paths.get_annotated_filepath(image))
        return _to_rgb(decoded)

    @classmethod
    def IS_CHANGED(cls, image):
        with open(folder_paths.get_annotated_filepath(image), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        if not folder_paths.exists_annotated_filepath(image):
            return f"Invalid image file: {image} (looked in {folder_paths.get_input_directory()})"
        return True


class MakeGradient:
    """A deterministic test image: red ramps left to right, green top to bottom, and blue is
    ``((7x + 13y + seed) mod 256) / 255``."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "width": ("INT", {"default": 256, "min": 1, "max": 8192}),
                "height": ("INT", {"default": 256, "min": 1, "max": 8192}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"
    CATEGORY = "pyisolate/examples/image"

    def make(self, width, height, seed):
        xs = torch.tensor([x / (width - 1) if width > 1 else 0.0 for x in range(width)], dtype=torch.float32)
        ys = torch.tensor([y / (height - 1) if height > 1 else 0.0 for y in range(height)], dtype=torch.float32)
        grid_x = torch.arange(width).reshape(1, width)
        grid_y = torch.arange(height).reshape(height, 1)
        blue = _UNIT[(grid_x * 7 + grid_y * 13 + seed % 256) % 256]
        image = torch.stack([xs.reshape(1, width).expand(height, width), ys.reshape(height, 1).expand(height, width), blue], dim=-1)
        return (image.unsqueeze(0).contiguous(),)


class SaveImagePNG:
    """Saves images as ``<prefix>_<counter>_.png`` in the output folder, as ComfyUI's SaveImage."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "pyisolate"})},
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True
    CATEGORY = "pyisolate/examples/image"

    def save(self, images, filename_prefix="pyisolate", prompt=None, extra_pnginfo=None):
        output_dir = folder_paths.get_output_directory()
        height, width = int(images.shape[1]), int(images.shape[2])
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, output_dir, width, height)
        text = {}
        if prompt is not None:
            text["prompt"] = json.dumps(prompt)
        if isinstance(extra_pnginfo, dict):
            for key, value in extra_pnginfo.items():
                text[key] = json.dumps(value)
        results = []
        for image in images:
            samples = torch.clamp(image * 255.0, 0, 255).to(torch.uint8).contiguous()
            name = f"{filename}_{counter:05}_.png"
            with open(os.path.join(folder, name), "wb") as f:
                f.write(encode_png(width, height, int(samples.shape[-1]), _tobytes(samples), text))
            results.append({"filename": name, "subfolder": subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results}}


class ShowText:
    """Shows a string in the UI (``{"ui": {"text": [...]}}``) and passes it on."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "show"
    OUTPUT_NODE = True
    CATEGORY = "pyisolate/examples"

    def show(self, text):
        return {"ui": {"text": [text]}, "result": (text,)}


class ImageStats:
    """A one-line summary of an image: shape, dtype, min, max and mean."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("stats",)
    FUNCTION = "stats"
    CATEGORY = "pyisolate/examples/image"

    def stats(self, image):
        values = image.float()
        return (
            f"shape={list(image.shape)} dtype={str(image.dtype).replace('torch.', '')} "
            f"min={values.min().item():.6f} max={values.max().item():.6f} mean={values.mean().item():.6f}",
        )


NODE_CLASS_MAPPINGS = {
    "LoadImageFile": LoadImageFile,
    "MakeGradient": MakeGradient,
    "SaveImagePNG": SaveImagePNG,
    "ShowText": ShowText,
    "ImageStats": ImageStats,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LoadImageFile": "Load Image (PNG file)",
    "MakeGradient": "Gradient Image",
    "SaveImagePNG": "Save Image (PNG)",
    "ShowText": "Show Text",
    "ImageStats": "Image Stats",
}
