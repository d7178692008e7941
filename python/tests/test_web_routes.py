"""Pack routes inside the process: the request handlers get, what their results become,
routes recorded at import (decorators, app.router, static), and ``$routes`` end to end in a
real child process with the server suite's fixture pack."""
from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path

import pytest

import _comfy_paths  # noqa: F401 - sys.path

from pyisolate_runtime.web import routes as web_routes
from pyisolate_runtime.web.request import Request, parse_form
from pyisolate_runtime.web.response import FileResponse, Response, json_response, to_wire
from pyisolate_runtime.web.routes import App, RouteTableDef, RoutesService, collect

# What the runtime's setup does: the fallback aiohttp at the end of sys.path.
if web_routes.FALLBACK_DIR not in sys.path:
    sys.path.append(web_routes.FALLBACK_DIR)

SERVER_PACK = Path(__file__).resolve().parents[2] / "test" / "shared" / "server_packs" / "ServerIsolated"
BOUNDARY = "xYzBoUnDaRy"


def multipart(fields: dict, files: dict) -> bytes:
    out = b""
    for k, v in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    for k, (name, data, ctype) in files.items():
        out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def run(coro):
    return asyncio.run(coro)


def test_request_reads_its_body_query_headers_and_match_info():
    req = Request({"method": "post", "path": "/x/7", "url": "http://h:1/x/7?a=1&a=2&b=", "query": [["a", "1"], ["a", "2"], ["b", ""]],
                   "headers": [["content-type", "application/json; charset=utf-8"], ["X-Thing", "v"]],
                   "match_info": {"id": "7"}, "body": b'{"seed": 18446744073709551615}'})
    assert req.method == "POST" and req.path == "/x/7" and req.match_info == {"id": "7"}
    assert req.query["a"] == "1" and req.query.getall("a") == ["1", "2"] and req.query.get("b") == ""
    assert req.rel_url.query.get("a") == "1" and req.query_string == "a=1&a=2&b="
    assert req.headers["x-thing"] == "v" and req.content_type == "application/json" and req.charset == "utf-8"
    assert run(req.json()) == {"seed": 2**64 - 1}
    assert run(req.text()) == '{"seed": 18446744073709551615}'
    assert run(req.read()) == b'{"seed": 18446744073709551615}'
    req["state"] = 1
    assert req["state"] == 1 and "state" in req


def test_post_parses_urlencoded_and_multipart_forms():
    form = parse_form("application/x-www-form-urlencoded", b"a=1&b=two+words&a=3")
    assert form.getall("a") == ["1", "3"] and form["b"] == "two words"
    png = bytes(range(256)) * 3
    body = multipart({"type": "input", "note": "héllo"}, {"image": ("pic.png", png, "image/png")})
    req = Request({"method": "POST", "headers": [["Content-Type", f"multipart/form-data; boundary={BOUNDARY}"]], "body": body})
    post = run(req.post())
    assert post["type"] == "input" and post["note"] == "héllo"
    image = post["image"]
    assert image.filename == "pic.png" and image.content_type == "image/png" and image.file.read() == png
    with pytest.raises(ValueError, match="boundary"):
        parse_form("multipart/form-data", body)


def test_results_become_answers_with_status_and_headers(tmp_path):
    assert to_wire({"a": 2**64 - 1}) == {"status": 200, "reason": None, "headers": [["Content-Type", "application/json; charset=utf-8"]],
                                        "body": b'{"a": 18446744073709551615}', "file": None}
    assert to_wire("hi")["body"] == b"hi" and to_wire("hi")["headers"] == [["Content-Type", "text/plain; charset=utf-8"]]
    assert to_wire(b"\x00\x01")["headers"] == [["Content-Type", "application/octet-stream"]]
    assert to_wire(None)["status"] == 204
    r = to_wire(Response(text="made", status=201, headers={"X-A": "b"}))
    assert (r["status"], r["body"], dict(r["headers"])) == (201, b"made", {"X-A": "b", "Content-Type": "text/plain; charset=utf-8"})
    assert to_wire(json_response([1, 2], status=202))["body"] == b"[1, 2]"
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert to_wire(FileResponse(f))["file"] == str(f)
    from pyisolate_runtime.shims_fallback.aiohttp import web  # the fallback aiohttp (the real one may be installed too)

    assert to_wire(web.HTTPNotFound(text="nope"))["status"] == 404
    assert to_wire(web.HTTPFound("/elsewhere"))["headers"] == [["Location", "/elsewhere"]]
    with pytest.raises(TypeError, match="return a dict or list"):
        to_wire(object())


def test_routes_recorded_at_import_are_collected_per_pack_and_served(tmp_path):
    table = RouteTableDef(recording=True)

    @table.get("/rec/{name}")
    async def hello(request):
        return {"hi": request.match_info["name"]}

    app = App()
    app.router.add_post("/rec/plain", lambda request: "plain")
    own = RouteTableDef()  # a pack's own table: recorded once added to the app

    @own.put("/rec/own")
    async def put(request):
        raise RuntimeError("own failed")

    app.add_routes(own)
    table.static("/rec/static", tmp_path)
    got = collect("RecPack", object())
    assert got["routes"] == [
        {"method": "GET", "path": "/rec/{name}", "api": True},
        {"method": "POST", "path": "/rec/plain", "api": False},
        {"method": "PUT", "path": "/rec/own", "api": False},
    ]
    assert got["static_routes"] == [{"prefix": "/rec/static", "path": str(tmp_path)}]
    assert collect("Other", object())["routes"] == []  # what was recorded went to RecPack
    svc = RoutesService()
    answer = run(svc.handle("RecPack", {"key": "GET /rec/{name}"}, {"method": "GET", "path": "/rec/ann", "match_info": {"name": "ann"}}))
    assert json.loads(answer["body"]) == {"hi": "ann"}
    assert run(svc.handle("RecPack", {"key": "POST /rec/plain"}, {"method": "POST"}))["body"] == b"plain"
    with pytest.raises(RuntimeError, match="own failed"):
        run(svc.handle("RecPack", {"key": "PUT /rec/own"}, {"method": "PUT"}))
    with pytest.raises(LookupError, match="has no route GET /nope"):
        run(svc.handle("RecPack", {"key": "GET /nope"}, {"method": "GET"}))


def test_the_fallback_aiohttp_says_what_it_lacks():
    from pyisolate_runtime.shims_fallback import aiohttp

    with pytest.raises(AttributeError, match="only aiohttp.web"):
        aiohttp.ClientSession


def test_a_pack_process_reports_and_serves_its_routes(make_host):
    h = make_host("ServerIsolated", packs=[{"name": "ServerIsolated", "path": str(SERVER_PACK)}])
    ready = h.start()
    entry = ready["packs"][0]
    assert entry["ok"], entry.get("error")
    assert {"method": "GET", "path": "/server_test/hello/{name}", "api": True} in entry["routes"]
    assert {"method": "GET", "path": "/server_test/router", "api": False} in entry["routes"]
    assert entry["route_errors"] == {}
    assert entry["web_directory"] == str(SERVER_PACK / "web")
    # A manifest route: a method of the pack's ExtensionBase subclass.
    status = h.call("$routes", "handle", "ServerIsolated", {"handler": "get_status"}, {"method": "GET", "path": "/server_test/status", "query": [["x", "1"]]})
    assert status["status"] == 200
    body = json.loads(status["body"])
    assert body["status"] == "ok" and body["module"] == "ServerIsolated" and body["query"] == {"x": "1"}
    # A decorator route with a multipart body.
    data = b"\x89PNG" + bytes(1000)
    form = h.call("$routes", "handle", "ServerIsolated", {"key": "POST /server_test/form"},
                  {"method": "POST", "headers": [["Content-Type", f"multipart/form-data; boundary={BOUNDARY}"]],
                   "body": multipart({"kind": "k"}, {"upload": ("a.bin", data, "application/x-test")})})
    assert json.loads(form["body"]) == {"kind": "k", "upload": {"filename": "a.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "content_type": "application/x-test"}}
