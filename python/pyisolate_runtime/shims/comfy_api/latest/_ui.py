"""ComfyUI's V3 ``ui`` helpers: what a node shows in the UI once it ran.

Each helper becomes the node's ``ui`` dict (``{"images": [...]}``, ``{"text": (...)}``, …)
in ComfyUI's shape; image previews are written to the temp folder the host names.
"""
from __future__ import annotations

import json
import os
import random
from typing import Any, Optional

from ._io import FolderType, _UIOutput
from ._png import encode_png, write_wav


class SavedResult(dict):
    """One saved file: ``{"filename", "subfolder", "type"}``."""

    def __init__(self, filename: str, subfolder: str, type: FolderType):
        super().__init__(filename=filename, subfolder=subfolder, type=FolderType(type).value)

    @property
    def filename(self) -> str:
        return self["filename"]

    @property
    def subfolder(self) -> str:
        return self["subfolder"]

    @property
    def type(self) -> FolderType:
        return FolderType(self["type"])


class SavedImages(_UIOutput):
    """One or more saved images (``animated`` for an animated file)."""

    def __init__(self, results: list, is_animated: bool = False):
        self.results = results
        self.is_animated = is_animated

    def as_dict(self) -> dict:
        data: dict = {"images": self.results}
        if self.is_animated:
            data["animated"] = (True,)
        return data


class SavedAudios(_UIOutput):
    """One or more saved audio files."""

    def __init__(self, results: list):
        self.results = results

    def as_dict(self) -> dict:
        return {"audio": self.results}


def _directory(folder_type: FolderType) -> str:
    import folder_paths

    folder_type = FolderType(folder_type)
    if folder_type == FolderType.input:
        return folder_paths.get_input_directory()
    if folder_type == FolderType.output:
        return folder_paths.get_output_directory()
    return folder_paths.get_temp_directory()


def _png_text(cls: Any) -> Optional[dict]:
    hidden = getattr(cls, "hidden", None) if cls is not None else None
    if hidden is None:
        return None
    text = {}
    if hidden.prompt is not None:
        text["prompt"] = json.dumps(hidden.prompt)
    if hidden.extra_pnginfo:
        for key, value in hidden.extra_pnginfo.items():
            text[key] = json.dumps(value)
    return text


class ImageSaveHelper:
    """Saves image batches as PNG files in ComfyUI's naming scheme (``<prefix>_00001_.png``)."""

    @staticmethod
    def save_images(images: Any, filename_prefix: str, folder_type: FolderType, cls: Any = None,
                    compress_level: int = 4) -> list:
        import folder_paths

        full_folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, _directory(folder_type), images[0].shape[1], images[0].shape[0])
        text = _png_text(cls)
        results = []
        for batch_number, image in enumerate(images):
            name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
            with open(os.path.join(full_folder, name), "wb") as f:
                f.write(encode_png(image, text, compress_level))
            results.append(SavedResult(name, subfolder, folder_type))
            counter += 1
        return results

    @staticmethod
    def get_save_images_ui(images: Any, filename_prefix: str, cls: Any = None, compress_level: int = 4) -> SavedImages:
        return SavedImages(ImageSaveHelper.save_images(images, filename_prefix, FolderType.output, cls, compress_level))


class AudioSaveHelper:
    """Saves audio batches (``{"waveform": [B, C, S], "sample_rate"}``) as WAV files."""

    @staticmethod
    def save_audio(audio: dict, filename_prefix: str, folder_type: FolderType, cls: Any = None, format: str = "wav",
                   quality: str = "") -> list:
        import folder_paths

        full_folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, _directory(folder_type))
        results = []
        for batch_number, waveform in enumerate(audio["waveform"]):
            name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.wav"
            write_wav(os.path.join(full_folder, name), waveform, audio["sample_rate"])
            results.append(SavedResult(name, subfolder, folder_type))
            counter += 1
        return results

    @staticmethod
    def get_save_audio_ui(audio: dict, filename_prefix: str, cls: Any = None, format: str = "wav",
                          quality: str = "") -> SavedAudios:
        return SavedAudios(AudioSaveHelper.save_audio(audio, filename_prefix, FolderType.output, cls, format, quality))


def _temp_prefix() -> str:
    return "ComfyUI_temp_" + "".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))


class PreviewImage(_UIOutput):
    """Shows an image batch ``[B, H, W, C]`` (written to the temp folder)."""

    def __init__(self, image: Any, animated: bool = False, cls: Any = None, **kwargs: Any):
        self.values = ImageSaveHelper.save_images(image, _temp_prefix(), FolderType.temp, cls, compress_level=1)
        self.animated = animated

    def as_dict(self) -> dict:
        return {"images": self.values, "animated": (self.animated,)}


class PreviewMask(PreviewImage):
    """Shows a mask batch ``[B, H, W]`` as grey images."""

    def __init__(self, mask: Any, animated: bool = False, cls: Any = None, **kwargs: Any):
        preview = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1]))
        if hasattr(preview, "movedim"):
            preview = preview.movedim(1, -1).expand(-1, -1, -1, 3)
        else:
            import numpy as np

            preview = np.repeat(np.moveaxis(preview, 1, -1), 3, axis=-1)
        super().__init__(preview, animated, cls, **kwargs)


class PreviewAudio(_UIOutput):
    """Plays an audio batch (written to the temp folder as WAV)."""

    def __init__(self, audio: dict, cls: Any = None, **kwargs: Any):
        self.values = AudioSaveHelper.save_audio(audio, _temp_prefix(), FolderType.temp, cls)

    def as_dict(self) -> dict:
        return {"audio": self.values}


class PreviewVideo(_UIOutput):
    """Shows already-saved video files."""

    def __init__(self, values: list, **kwargs: Any):
        self.values = values

    def as_dict(self) -> dict:
        return {"images": self.values, "animated": (True,)}


class PreviewUI3D(_UIOutput):
    """Shows a 3D model file with camera info."""

    def __init__(self, model_file: Any, camera_info: Any, **kwargs: Any):
        self.model_file = model_file
        self.camera_info = camera_info
        self.bg_image_path = None

    def as_dict(self) -> dict:
        return {"result": [self.model_file, self.camera_info, self.bg_image_path]}


class PreviewText(_UIOutput):
    """Shows a text."""

    def __init__(self, value: str, **kwargs: Any):
        self.value = value

    def as_dict(self) -> dict:
        return {"text": (self.value,)}


__all__ = [
    "SavedResult", "SavedImages", "SavedAudios", "ImageSaveHelper", "AudioSaveHelper",
    "PreviewImage", "PreviewMask", "PreviewAudio", "PreviewVideo", "PreviewUI3D", "PreviewText",
]
