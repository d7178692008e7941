"""Node schemas: the /object_info entries of V1 and V3 nodes equal what ComfyUI emits.

The expected entries were written by reading ComfyUI's server node_info (V1 classes) and
comfy_api.latest._io Schema.get_v1_info (V3 classes) for the same node definitions.
"""
from __future__ import annotations

import json

import pytest

from _comfy_paths import FIXTURES, load_pack

from pyisolate_runtime.nodes.nodes_service import NodesService
from pyisolate_runtime.nodes.nodes_info import jsonable


@pytest.fixture(scope="module")
def collected():
    service = NodesService()
    ready = {name: service.collect(name, load_pack(name)) for name in ("V1Basics", "V3Basics", "HostApis")}
    return service, ready


# What ComfyUI emits for the fixture nodes V1Primitives and V3Primitives, shared with the
# TypeScript e2e test (test/node_api.e2e.test.ts).
EXPECTED = json.loads((FIXTURES / "expected_object_info.json").read_text())
V1_PRIMITIVES = EXPECTED["V1Primitives"]
V3_PRIMITIVES = EXPECTED["V3Primitives"]


def _as_browser_reads(entry: dict) -> dict:
    """Entries travel as JSON; integers beyond 2**53 read as floats, as in a browser."""
    return json.loads(json.dumps(jsonable(entry)))


def test_v1_entry_matches_comfyui(collected):
    service, _ = collected
    assert service.object_info()["V1Primitives"] == _as_browser_reads(V1_PRIMITIVES)


def test_v3_entry_matches_comfyui(collected):
    service, _ = collected
    assert service.object_info()["V3Primitives"] == V3_PRIMITIVES


def test_v1_flags_and_defaults(collected):
    info = collected[0].object_info()
    assert info["V1ShowText"]["output_node"] is True
    assert info["V1ShowText"]["display_name"] == "Show Text (V1)"
    assert info["V1Double"]["display_name"] == "V1Double"
    assert info["V1Double"]["output_name"] == ["INT"]
    assert info["V1Double"]["description"] == ""
    assert "output_tooltips" not in info["V1Double"]
    assert info["V1Checked"]["deprecated"] is True
    assert "deprecated" not in info["V1Double"]
    assert info["V1Sum"]["is_input_list"] is True
    assert info["V1Range"]["output_is_list"] == [True, False]
    assert info["V1Counter"]["input"] == {"required": {}}
    assert info["V1Counter"]["input_order"] == {"required": []}


def test_v3_defaults_ids_and_output_nodes(collected):
    info = collected[0].object_info()
    # An output node gets the prompt and extra_pnginfo hidden inputs added by finalize().
    assert info["V3ShowText"]["input"]["hidden"] == {"prompt": ["PROMPT"], "extra_pnginfo": ["EXTRA_PNGINFO"]}
    assert info["V3ShowText"]["output_node"] is True
    assert info["V3ShowText"]["display_name"] == "Show Text (V3)"
    assert info["V3Double"]["display_name"] is None
    assert info["V3Double"]["output_name"] == ["INT"]
    assert info["V3Range"]["output_is_list"] == [True, False]
    assert info["V3Sum"]["is_input_list"] is True
    assert info["V3Checked"]["deprecated"] is True
    assert info["PreviewProbe"]["output"] == []


def test_ready_entries(collected):
    _, ready = collected
    v1 = ready["V1Basics"]
    assert sorted(v1["nodes"]) == ["V1Checked", "V1Counter", "V1Double", "V1Primitives", "V1Range", "V1ShowText", "V1Sleeper", "V1Sum"]
    assert v1["web_directory"] == str(FIXTURES / "V1Basics" / "web")
    assert ready["V3Basics"]["web_directory"] is None
    assert v1["node_flags"]["V1Checked"] == {"api": "v1", "is_changed": True, "validate_inputs": True,
                                             "input_is_list": False, "not_idempotent": False, "is_async": False}
    assert ready["V3Basics"]["node_flags"]["V3AsyncProgress"]["is_async"] is True
    assert ready["V3Basics"]["node_flags"]["V3Checked"]["is_changed"] is True
    assert ready["V3Basics"]["node_flags"]["V3Double"]["is_changed"] is False
    assert v1["node_errors"] == {}
    json.dumps(ready)  # the ready info is plain JSON


def test_duplicate_class_names_keep_the_first(collected):
    service, _ = collected
    again = service.collect("V1BasicsCopy", load_pack("V1Basics"))
    assert again["nodes"] == {}
    assert "already defined by pack V1Basics" in again["node_errors"]["V1Double"]


def test_io_type_options():
    from comfy_api.latest import io

    assert io.Combo.Input("c", options=["a", "b"], upload=io.UploadType.image, image_folder=io.FolderType.input).as_dict() == {
        "optional": False, "multiselect": False, "options": ["a", "b"], "image_upload": True, "image_folder": "input"}
    assert io.MultiCombo.Input("m", options=["a"], chip=True).as_dict()["multi_select"] is True
    assert io.String.Input("s").as_dict() == {"optional": False, "multiline": False}
    assert io.Int.Input("i", display_mode=io.NumberDisplay.slider, control_after_generate=True).as_dict() == {
        "optional": False, "control_after_generate": True, "display": "slider"}
    assert io.Image.Input("img", optional=True).get_io_type() == "IMAGE"
    assert io.Mask.Output().io_type == "MASK"
    assert io.Custom("MY_TYPE").Input("x").get_io_type() == "MY_TYPE"
    multi = io.MultiType.Input(io.Int.Input("n", default=1), types=[io.Float, io.String])
    assert multi.get_io_type() == "INT,FLOAT,STRING"
    assert multi.as_dict()["widgetType"] == "INT"
    t = io.MatchType.Template("T", [io.Image, io.Mask])
    assert io.MatchType.Output(t).as_dict() == {"display_name": "MATCHTYPE", "is_output_list": False,
                                               "template": {"template_id": "T", "allowed_types": "IMAGE,MASK"}}
    for cls in ("Latent", "Conditioning", "Sigmas", "Noise", "TimestepsRange", "Mesh", "Voxel", "BBOX", "Point", "SEGS",
                "LossMap", "Audio", "Video", "SVG", "Model", "Clip", "Vae", "AnyType"):
        assert isinstance(getattr(io, cls).io_type, str)


def test_schema_validation_names_the_node():
    from comfy_api.latest import io

    class Broken(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="Broken", inputs=[io.Int.Input("a"), io.Int.Input("a")], outputs=[])

        @classmethod
        def execute(cls, a):
            return io.NodeOutput()

    with pytest.raises(ValueError, match="Broken.*Input ids must be unique"):
        Broken.GET_SCHEMA()


def test_jsonable():
    assert jsonable({"a": (1, 2), "b": {3, 1}, "c": 2**64 - 1, "d": None}) == {"a": [1, 2], "b": [1, 3], "c": float(2**64 - 1), "d": None}
