"""ComfyUI's built-in image nodes (V1 classes), for packs that subclass or call them."""
from __future__ import annotations

import hashlib
import json
import os
import random
from typing import Any, Dict, Optional, Tuple

from ._common import MAX_RESOLUTION

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CROP_METHODS = ["disabled", "center"]


class SaveImage:
    """Saves images as PNG files (``<prefix>_00001_.png``) with the prompt in their metadata."""

    def __init__(self) -> None:
        import folder_paths

        self.output_dir = folder_paths.get_output_directory()
        self.type = "output"
        self.prefix_append = ""
        self.compress_level = 4

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": "The prefix for the file to save."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    CATEGORY = "image"
    DESCRIPTION = "Saves the input images to your ComfyUI output directory."

    def save_images(self, images: Any, filename_prefix: str = "ComfyUI", prompt: Any = None, extra_pnginfo: Any = None) -> dict:
        import folder_paths
        from comfy_api.latest._png import encode_png

        prefix = filename_prefix + self.prefix_append
        full_folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            prefix, self.output_dir, images[0].shape[1], images[0].shape[0])
        text: Dict[str, str] = {}
        if prompt is not None:
            text["prompt"] = json.dumps(prompt)
        for key, value in (extra_pnginfo or {}).items():
            text[key] = json.dumps(value)
        results = []
        for batch_number, image in enumerate(images):
            name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            with open(os.path.join(full_folder, name), "wb") as f:
                f.write(encode_png(image, text or None, self.compress_level))
            results.append({"filename": name, "subfolder": subfolder, "type": self.type})
            counter += 1
        return {"ui": {"images": results}}


class PreviewImage(SaveImage):
    """Saves images into the temp folder, for display only."""

    def __init__(self) -> None:
        import folder_paths

        self.output_dir = folder_paths.get_temp_directory()
        self.type = "temp"
        self.prefix_append = "_temp_" + "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
        self.compress_level = 1

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"images": ("IMAGE",)}, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}


def _open(image: str) -> Any:
    import folder_paths
    import node_helpers
    from PIL import Image

    return node_helpers.pillow(Image.open, folder_paths.get_annotated_filepath(image))


def _input_files() -> list:
    import folder_paths

    directory = folder_paths.get_input_directory()
    try:
        files = [f for f in os.listdir(directory) if os.path.isfile(os.path.join(directory, f))]
    except OSError:
        files = []
    return sorted(folder_paths.filter_files_content_types(files, ["image"]))


def _file_hash(image: str) -> str:
    import folder_paths

    with open(folder_paths.get_annotated_filepath(image), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class LoadImage:
    """Loads an image from the input folder: the image (all frames) and the mask from its alpha channel."""

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"image": (_input_files(), {"image_upload": True})}}

    CATEGORY = "image"
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"

    def load_image(self, image: str) -> Tuple[Any, Any]:
        import numpy as np
        import node_helpers
        import torch
        from PIL import ImageOps, ImageSequence

        img = _open(image)
        images, masks = [], []
        size: Optional[Tuple[int, int]] = None
        for frame in ImageSequence.Iterator(img):
            frame = node_helpers.pillow(ImageOps.exif_transpose, frame)
            if frame.mode == "I":
                frame = frame.point(lambda i: i * (1 / 255))
            rgb = frame.convert("RGB")
            if size is None:
                size = rgb.size
            if rgb.size != size:
                continue
            images.append(torch.from_numpy(np.array(rgb).astype(np.float32) / 255.0)[None,])
            if "A" in frame.getbands():
                alpha = np.array(frame.getchannel("A")).astype(np.float32) / 255.0
                masks.append(1.0 - torch.from_numpy(alpha)[None,])
            elif frame.mode == "P" and "transparency" in frame.info:
                alpha = np.array(frame.convert("RGBA").getchannel("A")).astype(np.float32) / 255.0
                masks.append(1.0 - torch.from_numpy(alpha)[None,])
            else:
                masks.append(torch.zeros((1, 64, 64), dtype=torch.float32))
        if len(images) > 1 and img.format != "MPO":
            return torch.cat(images, dim=0), torch.cat(masks, dim=0)
        return images[0], masks[0]

    @classmethod
    def IS_CHANGED(cls, image: str) -> str:
        return _file_hash(image)

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> Any:
        import folder_paths

        return True if folder_paths.exists_annotated_filepath(image) else f"Invalid image file: {image}"


class LoadImageMask:
    """Loads one channel of an input image as a mask (alpha is inverted, as ComfyUI does)."""

    _color_channels = ["alpha", "red", "green", "blue"]

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"image": (_input_files(), {"image_upload": True}), "channel": (cls._color_channels,)}}

    CATEGORY = "mask"
    RETURN_TYPES = ("MASK",)
    FUNCTION = "load_image"

    def load_image(self, image: str, channel: str) -> Tuple[Any]:
        import numpy as np
        import node_helpers
        import torch
        from PIL import ImageOps

        img = node_helpers.pillow(ImageOps.exif_transpose, _open(image))
        if img.getbands() != ("R", "G", "B", "A"):
            img = img.point(lambda i: i * (1 / 255)).convert("RGBA") if img.mode == "I" else img.convert("RGBA")
        band = channel[0].upper()
        if band not in img.getbands():
            return (torch.zeros((1, 64, 64), dtype=torch.float32),)
        mask = torch.from_numpy(np.array(img.getchannel(band)).astype(np.float32) / 255.0)
        if band == "A":
            mask = 1.0 - mask
        return (mask.unsqueeze(0),)

    @classmethod
    def IS_CHANGED(cls, image: str, channel: str) -> str:
        return _file_hash(image)


def _scale(image: Any, width: int, height: int, method: str, crop: str) -> Any:
    import comfy.utils

    samples = image.movedim(-1, 1)
    return comfy.utils.common_upscale(samples, width, height, method, crop).movedim(1, -1)


class ImageScale:
    upscale_methods = UPSCALE_METHODS
    crop_methods = CROP_METHODS

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        size = {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}
        return {"required": {"image": ("IMAGE",), "upscale_method": (cls.upscale_methods,), "width": ("INT", size),
                             "height": ("INT", size), "crop": (cls.crop_methods,)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "image/upscaling"

    def upscale(self, image: Any, upscale_method: str, width: int, height: int, crop: str) -> Tuple[Any]:
        if width == 0 and height == 0:
            return (image,)
        h, w = image.shape[1], image.shape[2]
        width = width or max(1, round(w * height / h))
        height = height or max(1, round(h * width / w))
        return (_scale(image, width, height, upscale_method, crop),)


class ImageScaleBy:
    upscale_methods = UPSCALE_METHODS

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"image": ("IMAGE",), "upscale_method": (cls.upscale_methods,),
                             "scale_by": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "image/upscaling"

    def upscale(self, image: Any, upscale_method: str, scale_by: float) -> Tuple[Any]:
        width, height = round(image.shape[2] * scale_by), round(image.shape[1] * scale_by)
        return (_scale(image, width, height, upscale_method, "disabled"),)


class ImageInvert:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "invert"
    CATEGORY = "image"

    def invert(self, image: Any) -> Tuple[Any]:
        return (1.0 - image,)


class ImageBatch:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "batch"
    CATEGORY = "image"

    def batch(self, image1: Any, image2: Any) -> Tuple[Any]:
        import torch

        if image1.shape[-1] != image2.shape[-1]:
            import node_helpers

            image1, image2 = node_helpers.image_alpha_fix(image1, image2)
            image2, image1 = node_helpers.image_alpha_fix(image2, image1)
        if image1.shape[1:] != image2.shape[1:]:
            image2 = _scale(image2, image1.shape[2], image1.shape[1], "bilinear", "center")
        return (torch.cat((image1, image2), dim=0),)


class EmptyImage:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        size = {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}
        return {"required": {"width": ("INT", size), "height": ("INT", size),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
                             "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "generate"
    CATEGORY = "image"

    def generate(self, width: int, height: int, batch_size: int = 1, color: int = 0) -> Tuple[Any]:
        import torch

        channels = [((color >> shift) & 0xFF) / 0xFF for shift in (16, 8, 0)]
        out = torch.empty([batch_size, height, width, 3])
        for i, value in enumerate(channels):
            out[..., i] = value
        return (out,)


class ImagePadForOutpaint:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        pad = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8}
        return {"required": {"image": ("IMAGE",), "left": ("INT", pad), "top": ("INT", pad), "right": ("INT", pad),
                             "bottom": ("INT", pad), "feathering": ("INT", {"default": 40, "min": 0, "max": MAX_RESOLUTION})}}

    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "expand_image"
    CATEGORY = "image"

    def expand_image(self, image: Any, left: int, top: int, right: int, bottom: int, feathering: int) -> Tuple[Any, Any]:
        import torch

        b, h, w, c = image.shape
        out = torch.ones((b, h + top + bottom, w + left + right, c), dtype=torch.float32) * 0.5
        out[:, top:top + h, left:left + w, :] = image
        mask = torch.ones((h + top + bottom, w + left + right), dtype=torch.float32)
        inner = torch.zeros((h, w), dtype=torch.float32)
        if feathering > 0 and feathering * 2 < h and feathering * 2 < w:
            for i in range(h):
                for j in range(w):
                    dt = i if top != 0 else h
                    db = h - i if bottom != 0 else h
                    dl = j if left != 0 else w
                    dr = w - j if right != 0 else w
                    d = min(dt, db, dl, dr)
                    if d < feathering:
                        inner[i, j] = ((feathering - d) / feathering) ** 2
        mask[top:top + h, left:left + w] = inner
        return (out, mask)
