"""HTTP routes of node packs, served by the pyisolate server and run in the pack's process.

A pack declares routes two ways: ``route_manifest.json`` (handlers are methods of the
pack's extension class) and ComfyUI's ``@PromptServer.instance.routes.get(...)``
decorators, which :mod:`.routes` records at import time. The host matches a request and
hands it to this process just in time; :mod:`.request` gives the handler an aiohttp-like
``request``, :mod:`.response` turns what it returns (a dict or list, a str, bytes, or a
``web.Response``-like object) into the answer. :mod:`.web` holds the ``aiohttp.web`` names
packs use, so that packs need not install aiohttp.
"""
