"""ComfyUI's ``folder_paths`` for node packs run by pyisolate.

Folders (models, input, output, temp) belong to the host: every function that looks them
up asks the host's ``FolderPaths`` service, so all processes see one configuration and
one listing cache. Pure helpers (parsing ``"img.png [output]"``, filtering extensions,
choosing a save path in a folder the host named) run here.

Names cannot leave their folder: a file name that is absolute or climbs out with ``..``
is refused with ``ValueError`` (ComfyUI would quietly clamp it); ``get_full_path`` returns
None for a file that does not exist.
"""
from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import MutableMapping
from typing import Any, Iterable, Iterator, Optional

from pyisolate_runtime.nodes import comfy_bridge

_SERVICE = "FolderPaths"

supported_pt_extensions: set = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
"""File extensions of PyTorch weights (ComfyUI's default set)."""

filename_list_cache: dict = {}
"""Kept for packs that clear it; listings are cached by the host (and invalidated by mtime)."""

extension_mimetypes_cache: dict = {"webp": "image", "fbx": "model"}

SYSTEM_USER_PREFIX = "__"

_LEGACY = {"unet": "diffusion_models", "clip": "text_encoders"}


def _call(method: str, *args: Any) -> Any:
    return comfy_bridge.call(_SERVICE, method, *args)


def map_legacy(folder_name: str) -> str:
    """The current name of a folder known by an old one (``unet`` → ``diffusion_models``)."""
    return _LEGACY.get(folder_name, folder_name)


def _check_relative(name: str, what: str) -> str:
    """Refuses a file name that is absolute or climbs out of its folder."""
    if not isinstance(name, str) or name == "":
        raise ValueError(f"{what} must be a non-empty file name, got {name!r}.")
    normalized = name.replace("\\", "/")
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if normalized.startswith("/") or (len(normalized) > 2 and normalized[0].isalpha() and normalized[1:3] == ":/"):
        raise ValueError(f"{what} {name!r} is an absolute path; give a name relative to the folder.")
    depth = 0
    for p in parts:
        depth += -1 if p == ".." else 1
        if depth < 0:
            raise ValueError(f"{what} {name!r} climbs out of its folder with '..'; give a name inside the folder.")
    return name


# --- directories -----------------------------------------------------------------------------


def get_input_directory() -> str:
    return _call("get_input_directory")


def get_output_directory() -> str:
    return _call("get_output_directory")


def get_temp_directory() -> str:
    return _call("get_temp_directory")


def get_user_directory() -> str:
    return _call("get_user_directory")


def set_input_directory(input_dir: str) -> None:
    _call("set_input_directory", input_dir)


def set_output_directory(output_dir: str) -> None:
    _call("set_output_directory", output_dir)


def set_temp_directory(temp_dir: str) -> None:
    _call("set_temp_directory", temp_dir)


def set_user_directory(user_dir: str) -> None:
    _call("set_user_directory", user_dir)


def get_directory_by_type(type_name: str) -> Optional[str]:
    """The input, output or temp directory; None for any other name."""
    return _call("get_directory_by_type", type_name)


def get_system_user_directory(name: str = "system") -> str:
    if not name or not isinstance(name, str) or not name.replace("_", "").isalnum() or name.startswith("_"):
        raise ValueError(f"Invalid system user name {name!r}: use letters, digits and inner underscores.")
    return os.path.join(get_user_directory(), f"{SYSTEM_USER_PREFIX}{name}")


def get_public_user_directory(user_id: str) -> Optional[str]:
    if not user_id or not isinstance(user_id, str) or user_id.startswith(SYSTEM_USER_PREFIX):
        return None
    return os.path.join(get_user_directory(), user_id)


# --- annotated names: "name.png [output]" ----------------------------------------------------


def _split_annotation(name: str) -> "tuple[str, Optional[str]]":
    for kind in ("output", "input", "temp"):
        suffix = f"[{kind}]"
        if name.endswith(suffix):
            return name[: -len(suffix) - 1], kind
    return name, None


def annotated_filepath(name: str) -> "tuple[str, Optional[str]]":
    """Splits ``"img.png [output]"`` into ``("img.png", <output directory>)``; no annotation → None."""
    bare, kind = _split_annotation(name)
    if kind is None:
        return name, None
    return bare, get_directory_by_type(kind)


def get_annotated_filepath(name: str, default_dir: Optional[str] = None) -> str:
    """The full path of an annotated name (input directory, or ``default_dir``, when unannotated)."""
    _check_relative(_split_annotation(name)[0], "File name")
    return _call("get_annotated_filepath", name, default_dir)


def exists_annotated_filepath(name: str) -> bool:
    """Whether the file an annotated name points to exists."""
    _check_relative(_split_annotation(name)[0], "File name")
    return bool(_call("exists_annotated_filepath", name))


# --- model folders ---------------------------------------------------------------------------


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    """Adds a directory to a folder type (first when ``is_default``), creating the type if needed."""
    _call("add_model_folder_path", folder_name, full_folder_path, bool(is_default))


def get_folder_paths(folder_name: str) -> list:
    """The directories of a folder type; KeyError for an unknown one (as in ComfyUI)."""
    paths = _call("get_folder_paths", folder_name)
    if paths is None:
        raise KeyError(folder_name)
    return list(paths)


def get_filename_list(folder_name: str) -> list:
    """Every file of a folder type with one of its extensions, relative, sorted; KeyError if unknown."""
    names = _call("get_filename_list", folder_name)
    if names is None:
        raise KeyError(folder_name)
    return list(names)


def get_full_path(folder_name: str, filename: str) -> Optional[str]:
    """The full path of a file of a folder type, or None when no directory of it has the file."""
    _check_relative(filename, "File name")
    return _call("get_full_path", folder_name, filename)


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    full_path = get_full_path(folder_name, filename)
    if full_path is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return full_path


def get_supported_pt_extensions() -> set:
    """The extensions of PyTorch weight files."""
    return set(_call("get_supported_pt_extensions"))


def get_input_subfolders() -> list:
    """Every subfolder of the input directory, relative, with ``/`` separators."""
    input_dir = get_input_directory()
    if not os.path.isdir(input_dir):
        return []
    found = []
    for root, _dirs, _files in os.walk(input_dir):
        rel = os.path.relpath(root, input_dir)
        if rel != ".":
            found.append(rel.replace(os.sep, "/"))
    return sorted(found)


# --- pure helpers ----------------------------------------------------------------------------


def recursive_search(directory: str, excluded_dir_names: Optional[list] = None) -> "tuple[list, dict]":
    """Files under ``directory`` (relative) and the mtime of every directory visited."""
    if not os.path.isdir(directory):
        return [], {}
    excluded = set(excluded_dir_names or [])
    files: list = []
    dirs = {directory: os.path.getmtime(directory)}
    for dirpath, subdirs, filenames in os.walk(directory, followlinks=True, topdown=True):
        subdirs[:] = [d for d in subdirs if d not in excluded]
        files.extend(os.path.relpath(os.path.join(dirpath, f), directory) for f in filenames)
        for d in subdirs:
            path = os.path.join(dirpath, d)
            try:
                dirs[path] = os.path.getmtime(path)
            except OSError:
                pass
    return files, dirs


def filter_files_extensions(files: Iterable[str], extensions: Iterable[str]) -> list:
    """The files whose extension (lower case) is in ``extensions``; all of them when it is empty."""
    exts = set(extensions)
    return sorted(f for f in files if not exts or os.path.splitext(f)[-1].lower() in exts)


def filter_files_content_types(files: Iterable[str], content_types: Iterable[str]) -> list:
    """The files whose MIME type is one of ``content_types`` ("image", "video", "audio", "model")."""
    wanted = set(content_types)
    result = []
    for f in files:
        ext = f.split(".")[-1]
        kind = extension_mimetypes_cache.get(ext)
        if kind is None:
            mime, _ = mimetypes.guess_type(f, strict=False)
            if not mime:
                continue
            kind = extension_mimetypes_cache[ext] = mime.split("/")[0]
        if kind in wanted:
            result.append(f)
    return result


def get_save_image_path(filename_prefix: str, output_dir: str, image_width: int = 0,
                        image_height: int = 0) -> "tuple[str, str, int, str, str]":
    """Where to save the next ``<prefix>_<counter>_`` file: ``(folder, filename, counter, subfolder, prefix)``.

    ``%width%``, ``%height%``, ``%year%`` … in the prefix are filled in; a prefix that leaves
    ``output_dir`` is refused.
    """
    if "%" in filename_prefix:
        now = time.localtime()
        for key, value in (("%width%", str(image_width)), ("%height%", str(image_height)), ("%year%", str(now.tm_year)),
                           ("%month%", f"{now.tm_mon:02}"), ("%day%", f"{now.tm_mday:02}"), ("%hour%", f"{now.tm_hour:02}"),
                           ("%minute%", f"{now.tm_min:02}"), ("%second%", f"{now.tm_sec:02}")):
            filename_prefix = filename_prefix.replace(key, value)
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_folder = os.path.join(output_dir, subfolder)
    if os.path.commonpath((output_dir, os.path.abspath(full_folder))) != output_dir:
        raise ValueError(f"Saving outside the output folder is not allowed: prefix {filename_prefix!r} "
                         f"leads to {os.path.abspath(full_folder)!r}, outside {output_dir!r}.")
    counter = 1
    try:
        prefix_len = len(filename)
        for existing in os.listdir(full_folder):
            head = existing[: prefix_len + 1]
            if os.path.normcase(head[:-1]) != os.path.normcase(filename) or head[-1:] != "_":
                continue
            try:
                counter = max(counter, int(existing[prefix_len + 1:].split("_")[0]) + 1)
            except ValueError:
                pass
    except FileNotFoundError:
        os.makedirs(full_folder, exist_ok=True)
    return full_folder, filename, counter, subfolder, filename_prefix


# --- folder_names_and_paths: a view of the host's table ---------------------------------------


class _PathList(list):
    """The directory list of one folder type; adding to it adds to the host's table."""

    def __init__(self, folder_name: str, paths: Iterable[str]):
        super().__init__(paths)
        self._folder = folder_name

    def append(self, path: str) -> None:  # type: ignore[override]
        add_model_folder_path(self._folder, path)
        super().append(path)

    def insert(self, index: int, path: str) -> None:  # type: ignore[override]
        add_model_folder_path(self._folder, path, is_default=(index == 0))
        super().insert(index, path)

    def extend(self, paths: Iterable[str]) -> None:  # type: ignore[override]
        for p in list(paths):
            self.append(p)


class _FolderTable(MutableMapping):
    """``folder_names_and_paths``: reads and writes go to the host's folder table."""

    def __getitem__(self, folder_name: str) -> tuple:
        info = _call("folder_info", folder_name)
        if info is None:
            raise KeyError(folder_name)
        return _PathList(folder_name, info["paths"]), set(info["extensions"])

    def __setitem__(self, folder_name: str, value: Any) -> None:
        paths, extensions = value[0], value[1] if len(value) > 1 else ()
        _call("set_folder", folder_name, list(paths), sorted(extensions or ()))

    def __delitem__(self, folder_name: str) -> None:
        if not _call("remove_folder", folder_name):
            raise KeyError(folder_name)

    def __iter__(self) -> Iterator[str]:
        return iter(_call("folder_names"))

    def __len__(self) -> int:
        return len(_call("folder_names"))

    def __contains__(self, folder_name: object) -> bool:
        return isinstance(folder_name, str) and folder_name in _call("folder_names")

    def __repr__(self) -> str:
        return f"folder_names_and_paths({dict(self.items())!r})"


folder_names_and_paths = _FolderTable()


class _CacheHelper:
    """ComfyUI's listing-cache scope; the host keeps the cache, so this only nests."""

    def __enter__(self) -> "_CacheHelper":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def clear(self) -> None:
        pass


cache_helper = _CacheHelper()


_DYNAMIC = {
    "models_dir": "models_dir",
    "base_path": "base_path",
    "output_directory": "get_output_directory",
    "input_directory": "get_input_directory",
    "temp_directory": "get_temp_directory",
    "user_directory": "get_user_directory",
}


def __getattr__(name: str) -> Any:
    method = _DYNAMIC.get(name)
    if method is None:
        raise AttributeError(f"module 'folder_paths' has no attribute {name!r}")
    return _call(method)
