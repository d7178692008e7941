"""The parts of the ComfyUI shims that run inside the process: name checks, save paths,
listings, device questions, PNG previews, routes refusal."""
from __future__ import annotations

import os
import struct
import zlib

import pytest

import _comfy_paths  # noqa: F401 - sys.path

import folder_paths
from comfy import model_management as mm


@pytest.mark.parametrize("name", ["../x.safetensors", "a/../../x", "/etc/passwd", "..", "C:/x"])
def test_names_that_leave_their_folder_are_refused(name):
    with pytest.raises(ValueError, match="absolute path|climbs out"):
        folder_paths.get_full_path("checkpoints", name)


@pytest.mark.parametrize("name", ["m.safetensors", "sub/m.safetensors", "a/../m.ckpt", "./m.pt"])
def test_names_inside_their_folder_pass_the_check(name):
    assert folder_paths._check_relative(name, "File name") == name


def test_annotation_parsing():
    assert folder_paths._split_annotation("img.png [output]") == ("img.png", "output")
    assert folder_paths._split_annotation("img.png [input]") == ("img.png", "input")
    assert folder_paths._split_annotation("a b.png [temp]") == ("a b.png", "temp")
    assert folder_paths._split_annotation("img.png") == ("img.png", None)
    with pytest.raises(ValueError):
        folder_paths.get_annotated_filepath("../../etc/passwd [input]")


def test_extension_filters_and_legacy_names():
    files = ["a.safetensors", "b.CKPT", "c.txt", "d/e.pt"]
    assert folder_paths.filter_files_extensions(files, {".safetensors", ".ckpt", ".pt"}) == ["a.safetensors", "b.CKPT", "d/e.pt"]
    assert folder_paths.filter_files_extensions(files, []) == sorted(files)
    assert folder_paths.filter_files_content_types(["a.png", "b.mp4", "c.wav", "d.xyz"], ["image", "audio"]) == ["a.png", "c.wav"]
    assert folder_paths.map_legacy("unet") == "diffusion_models"
    assert folder_paths.map_legacy("clip") == "text_encoders"


def test_save_image_path_counts_and_stays_inside(tmp_path):
    out = str(tmp_path)
    folder, name, counter, sub, prefix = folder_paths.get_save_image_path("shots/ComfyUI", out, 8, 8)
    assert (folder, name, counter, sub) == (os.path.join(out, "shots"), "ComfyUI", 1, "shots")
    for n in (1, 2, 7):
        open(os.path.join(folder, f"ComfyUI_{n:05}_.png"), "wb").close()
    open(os.path.join(folder, "Other_00042_.png"), "wb").close()
    assert folder_paths.get_save_image_path("shots/ComfyUI", out)[2] == 8
    assert folder_paths.get_save_image_path("img_%width%x%height%", out, 64, 32)[1] == "img_64x32"
    with pytest.raises(ValueError, match="outside the output folder"):
        folder_paths.get_save_image_path("../escape", out)


def test_recursive_search(tmp_path):
    (tmp_path / "a" / ".git").mkdir(parents=True)
    (tmp_path / "a" / "m.pt").write_bytes(b"")
    (tmp_path / "a" / ".git" / "x.pt").write_bytes(b"")
    (tmp_path / "top.safetensors").write_bytes(b"")
    files, dirs = folder_paths.recursive_search(str(tmp_path), excluded_dir_names=[".git"])
    assert sorted(files) == [os.path.join("a", "m.pt"), "top.safetensors"]
    assert str(tmp_path) in dirs and str(tmp_path / "a") in dirs


def test_device_questions_answered_from_this_process():
    import torch

    device = mm.get_torch_device()
    assert isinstance(device, torch.device)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.type == expected
    assert mm.vram_device() == device
    assert mm.unet_offload_device() == torch.device("cpu")
    assert mm.cpu_mode() is (expected == "cpu")
    if expected == "cpu":
        assert mm.get_torch_device_name(device) == "cpu"
        assert mm.should_use_fp16() is False
    assert 0 < mm.get_free_memory(device) <= mm.get_total_memory(device)
    free, torch_free = mm.get_free_memory(device, torch_free_too=True)
    assert free > 0 and torch_free >= 0
    mm.soft_empty_cache()
    mm.current_loaded_models.append("model")
    mm.unload_all_models()
    assert mm.current_loaded_models == []


def test_interrupt_flag_semantics():
    mm._set_interrupt_flag(False)
    mm.throw_exception_if_processing_interrupted()
    mm.interrupt_current_processing()
    assert mm.processing_interrupted() is True
    with pytest.raises(mm.InterruptProcessingException):
        mm.throw_exception_if_processing_interrupted()
    assert mm.processing_interrupted() is False
    mm.interrupt_current_processing(True)
    mm.interrupt_current_processing(False)
    assert mm.processing_interrupted() is False


def test_progress_bar_hook_and_interrupt():
    from comfy import utils

    seen = []
    utils.set_progress_bar_global_hook(lambda v, t, p, node_id=None: seen.append((v, t, node_id)))
    try:
        bar = utils.ProgressBar(3, node_id="5")
        bar.update(1)
        bar.update(5)
        bar.update_absolute(1, total=10)
        assert seen == [(1, 3, "5"), (3, 3, "5"), (1, 10, "5")]
    finally:
        utils.set_progress_bar_global_hook(utils._host_progress_hook)
    mm._set_interrupt_flag(True)
    with pytest.raises(mm.InterruptProcessingException):
        utils.ProgressBar(2).update(1)


def _png_chunks(data: bytes) -> dict:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.setdefault(kind, []).append(body)
        pos += 12 + length
    return chunks


def test_png_encoder():
    import torch

    from comfy_api.latest._png import encode_png

    image = torch.zeros(2, 3, 3)
    image[0, 0] = torch.tensor([1.0, 0.5, 0.0])
    chunks = _png_chunks(encode_png(image, {"prompt": "{}"}))
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert (width, height, depth, color) == (3, 2, 8, 2)
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    assert len(raw) == 2 * (1 + 3 * 3)
    assert raw[0] == 0 and tuple(raw[1:4]) == (255, 127, 0)
    assert chunks[b"tEXt"] == [b"prompt\x00{}"]


def test_routes_are_recorded_and_handlers_returned_unchanged():
    import server
    from server import PromptServer

    server.take_routes()  # start from nothing

    @PromptServer.instance.routes.get("/my_node/status")
    async def status(request):
        return "ok"

    @PromptServer.instance.routes.post("/my_node/save/{name}")
    async def save(request):
        return "saved"

    assert status.__name__ == "status" and save.__name__ == "save"  # the handlers themselves
    PromptServer.instance.routes.static("/my_node/assets", "/tmp/assets")
    PromptServer.instance.app.router.add_get("/my_node/raw", status)
    PromptServer.instance.app.add_routes(PromptServer.instance.routes)  # already recorded: not twice
    PromptServer.instance.app.middlewares.append(object())
    PromptServer.instance.add_on_prompt_handler(lambda prompt: prompt)

    routes = server.take_routes()
    assert {r.pop("file", __file__) for r in routes} == {__file__}  # the handler's source file, where there is one
    here = __name__
    assert routes == [
        {"method": "GET", "path": "/my_node/status", "handler": f"{here}.test_routes_are_recorded_and_handlers_returned_unchanged.<locals>.status"},
        {"method": "POST", "path": "/my_node/save/{name}", "handler": f"{here}.test_routes_are_recorded_and_handlers_returned_unchanged.<locals>.save"},
        {"method": "STATIC", "path": "/my_node/assets", "directory": "/tmp/assets"},
        {"method": "GET", "path": "/my_node/raw", "handler": f"{here}.test_routes_are_recorded_and_handlers_returned_unchanged.<locals>.status"},
    ]
    assert [(d.method, d.path) for d in PromptServer.instance.routes][-2:] == [("GET", "/my_node/status"), ("POST", "/my_node/save/{name}")]
    assert server.take_routes() == []  # taken once


def test_nodes_module():
    import nodes

    assert nodes.MAX_RESOLUTION == 16384
