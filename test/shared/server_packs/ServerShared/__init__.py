"""Shared server suite, shared pack (no manifest: the shared process): a slow node that
runs beside the isolated pack's, and a route of its own."""
import time

import comfy.utils
from aiohttp import web
from server import PromptServer


class SharedSlow:
    """Counts to `steps` with a progress update per step; shows what it counted."""

    CATEGORY = "server_test"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": ("INT", {"default": 3, "min": 1, "max": 1000}),
                             "delay": ("FLOAT", {"default": 0.02, "min": 0.0, "max": 10.0})}}

    def run(self, steps, delay):
        bar = comfy.utils.ProgressBar(steps)
        for _ in range(steps):
            time.sleep(delay)
            bar.update(1)
        return {"ui": {"text": [f"shared counted {steps}"]}, "result": (steps,)}


NODE_CLASS_MAPPINGS = {"SharedSlow": SharedSlow}


@PromptServer.instance.routes.get("/server_shared/ping")
async def ping(request):
    return web.json_response({"pong": True, "shared": True})
