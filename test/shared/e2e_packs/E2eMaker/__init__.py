"""Shared e2e suite, isolated pack one: makes images, checks them when they come back, and
serves `E2eMaker` for direct calls from the host (and calls the host back)."""
import json
import os

import torch

from pyisolate_runtime import host, rpc


def make_image(width, height, seed):
    """A [1, height, width, 3] float32 image: k / 255 with k = (7x + 13y + 3c + seed) % 256.
    Computed in float64, then rounded once to float32 (as `Math.fround(k / 255)` in TS)."""
    y = torch.arange(height, dtype=torch.int64).view(height, 1, 1)
    x = torch.arange(width, dtype=torch.int64).view(1, width, 1)
    c = torch.arange(3, dtype=torch.int64).view(1, 1, 3)
    k = (7 * x + 13 * y + 3 * c + seed % 256) % 256
    return (k.to(torch.float64) / 255.0).to(torch.float32).unsqueeze(0)


def segment_of(t):
    """The file the tensor's memory is mapped from (per /proc/self/maps), or None."""
    ptr = t.data_ptr()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            if lo <= ptr < hi:
                return parts[5] if len(parts) > 5 else None
    return None


def check_value(value):
    if value < 0:
        raise ValueError(f"check_value refused {value}: negative values are not allowed")
    return value


def kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, tuple):
        return "tuple"
    if isinstance(v, list):
        return "list"
    return type(v).__name__


class Maker:
    """Called by the host directly (`process.call("E2eMaker", method, args)`)."""

    def add(self, a, b):
        return a + b

    def image(self, width, height, seed):
        return make_image(width, height, seed)

    def fail(self, value):
        return check_value(value)

    def ask_host(self, name):
        """Python → host: a host service, and the host's error as a Python exception."""
        greeting = host.call("E2eHost", "greet", name)
        try:
            host.call("E2eHost", "refuse", name)
            refused = None
        except Exception as e:  # the host's PyisolateError, restored here
            refused = f"{type(e).__name__}: {e}"
        return [greeting, refused]

    def apply(self, fn, value):
        """Calls a function the host passed (a TS callback) and returns what it gave."""
        return fn(value)

    def echo(self, values):
        """Sends values back unchanged, with what Python saw them as."""
        return [values, [kind(v) for v in values], [str(v) for v in values]]

    def pid(self):
        return os.getpid()


rpc.serve("E2eMaker", Maker())

MAX_SEED = 0xFFFFFFFFFFFFFFFF


class E2eMakeImage:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "width": ("INT", {"default": 8, "min": 1, "max": 4096}),
                "height": ("INT", {"default": 6, "min": 1, "max": 4096}),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"
    CATEGORY = "pyisolate/e2e"

    def make(self, width, height, seed):
        return (make_image(width, height, seed),)


class E2eCheckImage:
    """Receives the image back from the other isolated pack and says what it got."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE",),
                "width": ("INT", {"default": 8, "min": 1, "max": 4096}),
                "height": ("INT", {"default": 6, "min": 1, "max": 4096}),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED}),
                "relay": ("STRING", {"forceInput": True}),
            }
        }

    RETURN_TYPES = ()
    FUNCTION = "check"
    OUTPUT_NODE = True
    CATEGORY = "pyisolate/e2e"

    def check(self, image, width, height, seed, relay):
        report = {
            "exact": bool(torch.equal(image, make_image(width, height, seed))),
            "dtype": str(image.dtype),
            "shape": list(image.shape),
            "segment": segment_of(image),
            "pid": os.getpid(),
            "relay": json.loads(relay),
        }
        return {"ui": {"text": [json.dumps(report)]}}


class E2eBigValue:
    """A value with an integer above 2^53, a tuple and a list, as a custom type."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED})}}

    RETURN_TYPES = ("E2E_VALUE",)
    FUNCTION = "make"
    CATEGORY = "pyisolate/e2e"

    def make(self, seed):
        return ({"seed": seed, "pair": (seed, 7), "items": [seed - 1, 7], "nested": [(1, 2), [3, (4,)]]},)


NODE_CLASS_MAPPINGS = {"E2eMakeImage": E2eMakeImage, "E2eCheckImage": E2eCheckImage, "E2eBigValue": E2eBigValue}
