"""ComfyUI's versioned node API (``comfy_api.latest``, ``comfy_api.v0_0_2``), provided by pyisolate."""
