"""The shims that cover what packs import at load time without a ComfyUI checkout:
node_helpers, latent_preview, comfy.samplers' names, nodes' built-in classes, comfy_api's
input/util types, comfy.utils' tensor helpers, and the error for ComfyUI-only modules."""
from __future__ import annotations

import importlib
import io
import subprocess
import sys
import textwrap
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

import _comfy_paths  # noqa: F401 - sys.path

import comfy.samplers
import comfy.utils
import latent_preview
import node_helpers
import nodes
from comfy_api.latest import Input, InputImpl, Types

from _comfy_paths import ROOT


def test_conditioning_set_values_copies_each_entry_and_appends():
    t = torch.ones(1, 2, 3)
    cond = [[t, {"strength": 1.0, "area": (1, 2)}], [t, {}]]
    out = node_helpers.conditioning_set_values(cond, {"strength": 0.5})
    assert [o[1]["strength"] for o in out] == [0.5, 0.5]
    assert cond[0][1]["strength"] == 1.0 and "strength" not in cond[1][1]  # the input is untouched
    assert out[0][0] is t and out[0][1]["area"] == (1, 2)
    appended = node_helpers.conditioning_set_values(cond, {"strength": 0.25}, append=True)
    assert [o[1]["strength"] for o in appended] == [1.25, 0.25]


def test_image_alpha_fix_and_dtypes_and_pillow():
    rgb, rgba = torch.zeros(1, 2, 2, 3), torch.full((1, 2, 2, 4), 0.5)
    d, s = node_helpers.image_alpha_fix(rgb, rgba)
    assert d.shape[-1] == 3 and s.shape[-1] == 3
    d, s = node_helpers.image_alpha_fix(rgb, torch.zeros(1, 2, 2, 4)[..., :2].clone())
    assert torch.equal(d[..., -1], torch.ones(1, 2, 2))
    assert node_helpers.string_to_torch_dtype("bf16") is torch.bfloat16 and node_helpers.string_to_torch_dtype("x") is None
    assert node_helpers.hasher()().name == "sha256"
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (255, 0, 0)).save(buf, format="PNG")
    img = node_helpers.pillow(Image.open, io.BytesIO(buf.getvalue()))
    assert img.size == (4, 3)


def test_sampler_and_scheduler_names_are_comfyuis():
    assert comfy.samplers.KSampler.SAMPLERS[:3] == ["euler", "euler_cfg_pp", "euler_ancestral"]
    assert comfy.samplers.KSampler.SAMPLERS[-3:] == ["ddim", "uni_pc", "uni_pc_bh2"]
    assert "karras" in comfy.samplers.KSampler.SCHEDULERS and comfy.samplers.SCHEDULER_NAMES[0] == "simple"
    assert len(comfy.samplers.SAMPLER_NAMES) == len(comfy.samplers.KSAMPLER_NAMES) + 3
    with pytest.raises(NotImplementedError, match="--comfyui DIR"):
        comfy.samplers.KSampler(None, 20, "cpu")


def test_latent_preview_sends_nothing_and_steps_the_progress_bar():
    calls = []
    saved = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda v, t, preview, node_id=None: calls.append((v, t, preview)))
    try:
        assert latent_preview.get_previewer("cpu", None) is None
        x0_out: dict = {}
        cb = latent_preview.prepare_callback(None, 3, x0_out)
        for step in range(3):
            cb(step, torch.full((1,), float(step)), None, 3)
        latent_preview.set_preview_method("auto")
    finally:
        comfy.utils.set_progress_bar_global_hook(saved)
    assert calls == [(1, 3, None), (2, 3, None), (3, 3, None)]
    assert float(x0_out["x0"][0]) == 2.0


def test_builtin_node_classes_import_and_describe_themselves():
    for name in ["SaveImage", "PreviewImage", "ImageScale", "ImageScaleBy", "ImageInvert",
                 "ImageBatch", "EmptyImage", "ImagePadForOutpaint", "EmptyLatentImage", "LatentUpscale", "LatentUpscaleBy",
                 "LatentFromBatch", "ConditioningCombine", "ConditioningZeroOut", "ConditioningSetTimestepRange",
                 "ConditioningSetMask", "ConditioningSetArea", "ConditioningConcat", "ConditioningAverage", "CLIPTextEncode",
                 "VAEDecode", "VAEEncode", "KSampler", "KSamplerAdvanced"]:
        cls = getattr(nodes, name)
        assert isinstance(cls.INPUT_TYPES(), dict) and hasattr(cls, cls.FUNCTION), name
    assert nodes.MAX_RESOLUTION == 16384
    assert nodes.KSampler.INPUT_TYPES()["required"]["sampler_name"][0] == comfy.samplers.KSampler.SAMPLERS

    class MySave(nodes.SaveImage):  # what packs do (ComfyUI_essentials)
        def __init__(self):
            self.output_dir, self.type, self.prefix_append, self.compress_level = "/tmp", "temp", "_x", 1

    assert MySave().type == "temp" and MySave.FUNCTION == "save_images" and MySave.OUTPUT_NODE
    with pytest.raises(NotImplementedError, match="--comfyui DIR"):
        nodes.common_ksampler(None, 0, 20, 8.0, "euler", "normal", [], [], {})
    with pytest.raises(NotImplementedError, match="nodes.LoraLoader.*--comfyui DIR"):
        nodes.LoraLoader().load_lora(None, None, "x", 1.0, 1.0)


def test_builtin_node_computations():
    img = torch.rand(2, 8, 6, 3, generator=torch.Generator().manual_seed(1))
    (inv,) = nodes.ImageInvert().invert(img)
    assert torch.equal(inv, 1.0 - img)
    (scaled,) = nodes.ImageScale().upscale(img, "nearest-exact", 12, 0, "disabled")
    assert scaled.shape == (2, 16, 12, 3)
    (by,) = nodes.ImageScaleBy().upscale(img, "bilinear", 0.5)
    assert by.shape == (2, 4, 3, 3)
    (batch,) = nodes.ImageBatch().batch(img, torch.rand(1, 4, 3, 3))
    assert batch.shape == (3, 8, 6, 3)
    (empty,) = nodes.EmptyImage().generate(4, 2, 1, 0xFF8000)
    assert empty.shape == (1, 2, 4, 3) and torch.allclose(empty[0, 0, 0], torch.tensor([1.0, 128 / 255, 0.0]))
    (padded, mask) = nodes.ImagePadForOutpaint().expand_image(img[:1], 2, 0, 0, 4, 0)
    assert padded.shape == (1, 12, 8, 3) and mask.shape == (12, 8) and float(mask[0, 0]) == 1.0 and float(mask[0, 2]) == 0.0
    (latent,) = nodes.EmptyLatentImage().generate(64, 32, 2)
    assert latent["samples"].shape == (2, 4, 4, 8) and not latent["samples"].any()
    (up,) = nodes.LatentUpscale().upscale(latent, "nearest-exact", 128, 0, "disabled")
    assert up["samples"].shape == (2, 4, 8, 16)
    (part,) = nodes.LatentFromBatch().frombatch({"samples": torch.arange(3.0).reshape(3, 1, 1, 1)}, 1, 5)
    assert part["samples"].flatten().tolist() == [1.0, 2.0] and part["batch_index"] == [1, 2]
    cond = [[torch.ones(1, 2, 4), {"pooled_output": torch.ones(1, 4)}]]
    (zero,) = nodes.ConditioningZeroOut().zero_out(cond)
    assert not zero[0][0].any() and not zero[0][1]["pooled_output"].any() and cond[0][0].all()
    (ranged,) = nodes.ConditioningSetTimestepRange().set_range(cond, 0.2, 0.8)
    assert (ranged[0][1]["start_percent"], ranged[0][1]["end_percent"]) == (0.2, 0.8)
    (both,) = nodes.ConditioningCombine().combine(cond, ranged)
    assert len(both) == 2
    (cat,) = nodes.ConditioningConcat().concat(cond, cond)
    assert cat[0][0].shape == (1, 4, 4)

    class FakeClip:  # CLIPTextEncode works on any CLIP-like object
        def tokenize(self, text):
            return {"t": text}

        def encode_from_tokens_scheduled(self, tokens):
            return [[torch.zeros(1), {"text": tokens["t"]}]]

    (encoded,) = nodes.CLIPTextEncode().encode(FakeClip(), "a cat")
    assert encoded[0][1]["text"] == "a cat"


def test_comfy_api_input_and_util_types():
    import comfy_api.input
    import comfy_api.input_impl
    import comfy_api.util

    assert comfy_api.input.VideoInput is Input.Video and comfy_api.input_impl.VideoFromFile is InputImpl.VideoFromFile
    assert comfy_api.util.VideoContainer is Types.VideoContainer
    assert Types.VideoContainer.as_input() == ["auto", "mp4"] and Types.VideoCodec.as_input() == ["auto", "h264"]
    assert Types.VideoContainer.get_extension("auto") == "mp4"
    mesh = Types.MESH(torch.zeros(3, 3), torch.zeros(1, 3, dtype=torch.long))
    assert mesh.vertices.shape == (3, 3) and Types.VOXEL(torch.ones(2)).data.shape == (2,)
    svg = Types.SVG([io.BytesIO(b"<svg/>")]).combine(Types.SVG([io.BytesIO(b"<svg></svg>")]))
    assert len(svg.data) == 2
    frames = torch.rand(3, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    video = InputImpl.VideoFromComponents(Types.VideoComponents(images=frames, frame_rate=Fraction(12)))
    assert isinstance(video, Input.Video)
    assert video.get_dimensions() == (16, 16) and video.get_frame_count() == 3 and video.get_duration() == 0.25


def test_video_round_trip_through_a_file(tmp_path):
    pytest.importorskip("av", reason="PyAV (a ComfyUI environment's av) is not installed in this Python")
    frames = torch.rand(4, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    path = str(tmp_path / "v.mp4")
    InputImpl.VideoFromComponents(Types.VideoComponents(images=frames, frame_rate=Fraction(8))).save_to(path)
    video = InputImpl.VideoFromFile(path)
    assert video.get_dimensions() == (32, 32) and video.get_frame_rate() == 8 and video.get_frame_count() == 4
    assert video.get_components().images.shape == (4, 32, 32, 3)


def test_utils_batches_and_state_dicts(tmp_path):
    t = torch.arange(4.0).reshape(4, 1)
    assert comfy.utils.resize_to_batch_size(t, 4) is t
    assert comfy.utils.resize_to_batch_size(t, 2).flatten().tolist() == [0.0, 3.0]
    assert comfy.utils.resize_to_batch_size(t, 8).flatten().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert comfy.utils.resize_to_batch_size(t, 1).flatten().tolist() == [0.0]
    assert comfy.utils.resize_list_to_batch_size(["a", "b", "c"], 5) == ["a", "a", "b", "c", "c"]
    assert comfy.utils.resize_list_to_batch_size([], 3) == []
    sd = {"model.a": 1, "model.b": 2, "other": 3}
    out = comfy.utils.state_dict_prefix_replace(dict(sd), {"model.": "m."})
    assert out == {"other": 3, "m.a": 1, "m.b": 2}
    only = comfy.utils.state_dict_prefix_replace(dict(sd), {"model.": ""}, filter_keys=True)
    assert only == {"a": 1, "b": 2}
    pytest.importorskip("safetensors", reason="safetensors is not installed in this Python")
    path = str(tmp_path / "w.safetensors")
    comfy.utils.save_torch_file({"w": torch.ones(2, 2)}, path, metadata={"k": "v"})
    assert torch.equal(comfy.utils.load_torch_file(path)["w"], torch.ones(2, 2))


def test_tiled_scale_matches_the_untiled_result():
    torch.manual_seed(0)
    samples = torch.rand(2, 3, 40, 56)

    def up(x):
        return F.interpolate(x, scale_factor=2, mode="nearest")

    tiled = comfy.utils.tiled_scale(samples, up, tile_x=16, tile_y=16, overlap=4, upscale_amount=2, out_channels=3)
    assert tiled.shape == (2, 3, 80, 112)
    # A pointwise scaler gives the same pixels however the tiles overlap: the feathered weights sum out.
    assert torch.allclose(tiled, up(samples), atol=1e-6)
    assert comfy.utils.get_tiled_scale_steps(56, 40, 16, 16, 4) == 3 * 5  # rows ceil(36 / 12), columns ceil(52 / 12)
    assert comfy.utils.get_tiled_scale_steps(8, 8, 16, 16, 4) == 1
    whole = comfy.utils.tiled_scale(samples[:, :, :8, :8], up, tile_x=16, tile_y=16, overlap=4, upscale_amount=2)
    assert torch.equal(whole, up(samples[:, :, :8, :8]))
    down = comfy.utils.tiled_scale_multidim(samples, lambda x: x[..., ::2, ::2], tile=(16, 16), overlap=4,
                                            upscale_amount=2, downscale=True)
    assert down.shape == (2, 3, 20, 28)


@pytest.mark.parametrize("module", ["comfy.sd", "comfy.model_patcher", "comfy_extras.nodes_mask", "comfy_execution.graph",
                                    "comfy_api_nodes.util", "comfy_api.internal"])
def test_comfyui_only_modules_name_themselves_and_say_to_pass_comfyui(module):
    # A fresh process: the import hook is installed by the runtime, as in a child.
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(ROOT / 'python' / 'pyisolate_runtime' / 'shims')!r}, {str(ROOT / 'python')!r}]
        from pyisolate_runtime.comfyui import imports
        imports.install_comfy_only()
        import comfy.utils, comfy_api.latest  # the shims still import
        try:
            import {module}
        except ModuleNotFoundError as e:
            print(e.name, "|", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, message = out.stdout.strip().split(" | ", 1)
    # A package the shims lack fails at its top level (comfy_extras); a submodule of a shimmed package by its own name.
    assert name == (module if module.split(".")[0] in ("comfy", "comfy_api") else module.split(".")[0])
    module = name
    assert f"No module named {module!r}" in message and "--comfyui DIR" in message


@pytest.mark.parametrize("statement,module", [("from comfy import model_detection", "comfy.model_detection"),
                                              ("from comfy import sd, utils", "comfy.sd"),
                                              ("from comfy_api import feature_flags", "comfy_api.feature_flags")])
def test_from_imports_of_comfyui_only_submodules_keep_the_reason(statement, module):
    # Python turns a submodule's ModuleNotFoundError under `from package import name` into a bare
    # "cannot import name"; the shimmed packages keep the reason and the advice.
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(ROOT / 'python' / 'pyisolate_runtime' / 'shims')!r}, {str(ROOT / 'python')!r}]
        from pyisolate_runtime.comfyui import imports
        imports.install_comfy_only()
        import comfy, comfy_api
        assert not hasattr(comfy, "no_such_thing") and not hasattr(comfy_api, "no_such_thing")
        try:
            {statement}
        except ModuleNotFoundError as e:
            print(e.name, "|", e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, message = out.stdout.strip().split(" | ", 1)
    assert name == module
    assert f"No module named {module!r}" in message and "--comfyui DIR" in message


def test_shimmed_modules_are_importable_by_their_comfyui_names():
    for name in ["node_helpers", "latent_preview", "comfy.samplers", "comfy_api.input", "comfy_api.input_impl",
                 "comfy_api.util", "comfy_api.latest._input", "comfy_api.latest._input_impl", "comfy_api.latest._util"]:
        assert importlib.import_module(name) is not None
