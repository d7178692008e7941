"""Shared server suite, isolated pack: nodes that show values, report progress, send
events, fail, and routes declared both ways (route_manifest.json and decorators)."""
import hashlib
import os
import time

import comfy.utils
from aiohttp import web
from comfy import model_management
from server import PromptServer

from pyisolate import ExtensionBase

WEB_DIRECTORY = "./web"
MAX_SEED = 0xFFFFFFFFFFFFFFFF


class SeedEcho:
    """Shows the seed it received, as text (digits: exact beyond 2^53)."""

    CATEGORY = "server_test"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED})},
                "optional": {"after": ("INT", {"forceInput": True})}}

    def run(self, seed, after=None):
        text = f"{seed}|{type(seed).__name__}"
        return {"ui": {"text": [text], "seed": [seed]}, "result": (text,)}


class SlowProgress:
    """Counts to `steps`, one progress update and a progress text per step."""

    CATEGORY = "server_test"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": ("INT", {"default": 3, "min": 1, "max": 10000}),
                             "delay": ("FLOAT", {"default": 0.01, "min": 0.0, "max": 10.0})},
                "hidden": {"unique_id": "UNIQUE_ID"}}

    def run(self, steps, delay, unique_id=None):
        bar = comfy.utils.ProgressBar(steps)
        for i in range(steps):
            time.sleep(delay)
            model_management.throw_exception_if_processing_interrupted()
            bar.update(1)
            PromptServer.instance.send_progress_text(f"step {i + 1}", unique_id)
        return (steps,)


class Boom:
    """Fails with a ValueError naming its input."""

    CATEGORY = "server_test"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 1})}}

    def run(self, value):
        raise ValueError(f"boom from ServerIsolated with {value}")


class Notify:
    """Sends `server_test.note` to client `to` (every client when empty) and one to everyone."""

    CATEGORY = "server_test"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"to": ("STRING", {"default": ""}), "note": ("STRING", {"default": "hi"})}}

    def run(self, to, note):
        me = PromptServer.instance.client_id
        PromptServer.instance.send_sync("server_test.note", {"note": note, "to": to or None, "from": me}, to or None)
        PromptServer.instance.send_sync("server_test.all", {"note": note, "from": me})
        return {}


class Preview:
    """One progress step carrying a preview image (already encoded: no PIL needed)."""

    CATEGORY = "server_test"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"size": ("INT", {"default": 16})}}

    def run(self, size):
        bar = comfy.utils.ProgressBar(2)
        bar.update_absolute(1, 2, ("PNG", bytes(range(size)), None))
        bar.update_absolute(2, 2)
        return {}


NODE_CLASS_MAPPINGS = {"SeedEcho": SeedEcho, "SlowProgress": SlowProgress, "Boom": Boom, "Notify": Notify, "Preview": Preview}


class ServerTestExtension(ExtensionBase):
    """route_manifest.json's handlers."""

    def __init__(self):
        self.loaded_from = None

    async def on_module_loaded(self, module):
        self.loaded_from = module.__name__

    async def get_status(self, request):
        return {"status": "ok", "pid": os.getpid(), "module": self.loaded_from, "query": dict(request.query.items())}

    async def process_data(self, request):
        data = await request.json()
        return {"result": data, "method": request.method}


routes = PromptServer.instance.routes


@routes.get("/server_test/hello/{name}")
async def hello(request):
    return web.json_response({"hello": request.match_info["name"], "pid": os.getpid(), "q": request.query.get("q"),
                              "agent": request.headers.get("X-Test")})


@routes.post("/server_test/echo")
async def echo(request):
    data = await request.json()
    return web.json_response({"echo": data, "type": type(data.get("seed")).__name__})


@routes.post("/server_test/form")
async def form(request):
    post = await request.post()
    out = {}
    for key in post.keys():
        value = post.get(key)
        if isinstance(value, str):
            out[key] = value
        else:
            data = value.file.read()
            out[key] = {"filename": value.filename, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "content_type": value.content_type}
    return out


@routes.get("/server_test/fail")
async def fail(request):
    raise RuntimeError("this handler always fails")


@routes.get("/server_test/missing")
async def missing(request):
    raise web.HTTPNotFound(text="no such thing")


@routes.get("/server_test/text")
def plain_text(request):
    return "plain text"


@routes.put("/server_test/raw")
async def raw(request):
    return bytes(reversed(await request.read()))


@routes.patch("/server_test/words")
async def words(request):
    return (await request.text()).split()


@routes.get("/server_test/file")
async def file(request):
    return web.FileResponse(os.path.join(os.path.dirname(__file__), "web", "hello.js"))


@routes.post("/server_test/broadcast")
async def broadcast(request):
    data = await request.json()
    await PromptServer.instance.send("server_test.route", data, data.get("to"))
    return web.Response(status=204)


PromptServer.instance.app.router.add_get("/server_test/router", lambda request: web.Response(text="from the router"))
