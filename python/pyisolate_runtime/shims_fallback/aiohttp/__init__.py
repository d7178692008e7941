"""``aiohttp`` for node packs whose environment has none: only ``aiohttp.web``.

pyisolate's server answers HTTP itself and runs a pack's route handlers in the pack's
process; handlers build their answers with ``web.Response``, ``web.json_response``,
``web.FileResponse``, ``web.HTTPNotFound``… from :mod:`aiohttp.web`. This package sits at
the end of ``sys.path``: a pack that lists aiohttp in its dependencies gets the real one.
"""
from . import web

__all__ = ["web"]


def __getattr__(name: str):
    raise AttributeError(
        f"aiohttp.{name} is not available: pyisolate provides only aiohttp.web's names for route handlers. "
        "Add aiohttp to the pack's dependencies (pyisolate.yaml) to use the rest of aiohttp.")
