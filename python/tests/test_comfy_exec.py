"""Executing V1 and V3 nodes with ComfyUI's list semantics, hidden inputs, ui outputs,
IS_CHANGED / VALIDATE_INPUTS, and interrupts."""
from __future__ import annotations

import threading
import time

import pytest

from _comfy_paths import load_pack

from pyisolate_runtime.nodes.nodes_service import NodeNotFound, NodesService


@pytest.fixture(scope="module")
def service():
    s = NodesService()
    for name in ("V1Basics", "V3Basics", "HostApis"):
        s.collect(name, load_pack(name))
    return s


HIDDEN = {"prompt": {"12": {"class_type": "X", "inputs": {}}}, "extra_pnginfo": {"workflow": 1}, "prompt_id": "p-1"}


@pytest.mark.parametrize("api", ["V1", "V3"])
def test_primitives_combo_and_hidden(service, api):
    inputs = {"count": [3], "scale": [0.5], "text": ["hi"], "flag": [True], "mode": ["mul"], "extra": [4]}
    if api == "V1":
        inputs["seed"] = [2**64 - 1]
    out = service.execute(f"{api}Primitives", inputs, HIDDEN, "12")
    assert out["ui"] is None
    count, value, summary = out["result"]
    assert count == [7]
    assert value == [1.5]
    seed = f"|{2**64 - 1}" if api == "V1" else ""
    assert summary == [f"hi|True|mul{seed}|12|['12']|{{'workflow': 1}}"]


@pytest.mark.parametrize("api", ["V1", "V3"])
def test_mapping_over_lists(service, api):
    out = service.execute(f"{api}Double", {"x": [1, 2, 3], "k": [10]}, None, "1")
    assert out["result"] == [[10, 20, 30]]
    # shorter lists repeat their last item
    out = service.execute(f"{api}Double", {"x": [1, 2, 3], "k": [10, 100]}, None, "1")
    assert out["result"] == [[10, 200, 300]]


@pytest.mark.parametrize("api", ["V1", "V3"])
def test_input_is_list(service, api):
    assert service.execute(f"{api}Sum", {"values": [1, 2, 3]}, None, "2")["result"] == [[6], [3]]


@pytest.mark.parametrize("api", ["V1", "V3"])
def test_output_is_list(service, api):
    out = service.execute(f"{api}Range", {"n": [2, 3]}, None, "3")
    assert out["result"] == [[0, 1, 0, 1, 2], ["n=2", "n=3"]]


@pytest.mark.parametrize("api", ["V1", "V3"])
def test_ui_outputs_merge_across_calls(service, api):
    out = service.execute(f"{api}ShowText", {"text": ["a", "b"]}, HIDDEN, "4")
    assert out["result"] == [["A", "B"]]
    assert out["ui"] == {"text": ["A", "B"]}


@pytest.mark.parametrize("api", ["V1", "V3"])
def test_is_changed_and_validate_inputs(service, api):
    assert service.is_changed(f"{api}Checked", {"value": [3]}, None, "5") == ["fingerprint-3"]
    assert service.is_changed(f"{api}Double", {"x": [1], "k": [2]}, None, "5") is None
    assert service.validate_inputs(f"{api}Checked", {"value": [2]}, "5") is True
    assert service.validate_inputs(f"{api}Checked", {"value": [-1]}, "5") == "value must be >= 0, got -1"
    assert service.validate_inputs(f"{api}Double", {"x": [1], "k": [2]}, "5") is True


def test_v1_objects_are_kept_per_node_id(service):
    assert service.execute("V1Counter", {}, None, "a")["result"] == [[1]]
    assert service.execute("V1Counter", {}, None, "a")["result"] == [[2]]
    assert service.execute("V1Counter", {}, None, "b")["result"] == [[1]]
    service.forget("a")
    assert service.execute("V1Counter", {}, None, "a")["result"] == [[1]]


def test_async_v3_node_and_progress(service):
    out = service.execute("V3AsyncProgress", {"steps": [3]}, None, "9")
    assert out["result"] == [["done 3 steps as node 9"]]


def test_unknown_class_and_bad_inputs(service):
    with pytest.raises(NodeNotFound, match="'Nope' is not loaded"):
        service.execute("Nope", {}, None, "1")
    with pytest.raises(TypeError, match="must be a list of values"):
        service.execute("V1Double", {"x": 1, "k": [2]}, None, "1")


def test_undeclared_inputs_are_dropped(service):
    assert service.execute("V1Double", {"x": [2], "k": [3], "stale": [1]}, None, "1")["result"] == [[6]]


@pytest.mark.parametrize("api", ["V1", "V3"])
def test_interrupt_stops_a_running_node(service, api):
    from comfy import model_management as mm

    mm._set_interrupt_flag(False)
    outcome = {}

    def run():
        try:
            service.execute(f"{api}Sleeper", {"seconds": [30.0]}, None, "7")
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            outcome["error"] = e
            outcome["at"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.2)
    sent = time.monotonic()
    mm._set_interrupt_flag(True)
    t.join(5)
    assert not t.is_alive()
    assert type(outcome["error"]).__name__ == "InterruptProcessingException"
    assert type(outcome["error"]).__module__ == "comfy.model_management"
    assert outcome["at"] - sent < 0.1
    assert mm.processing_interrupted() is False  # consumed by the raise


def test_pending_interrupt_stops_the_next_node_before_it_runs(service):
    from comfy import model_management as mm

    mm._set_interrupt_flag(True)
    with pytest.raises(mm.InterruptProcessingException):
        service.execute("V1Double", {"x": [1], "k": [1]}, None, "1")
    assert service.execute("V1Double", {"x": [1], "k": [1]}, None, "1")["result"] == [[1]]
