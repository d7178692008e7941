"""ComfyUI's versioned node API (``comfy_api.latest``, ``comfy_api.v0_0_2``), provided by pyisolate."""


def __getattr__(name: str):  # ``from comfy_api import <a ComfyUI-only module>`` says to pass --comfyui DIR
    from pyisolate_runtime.comfyui.imports import shimmed_package_getattr
    return shimmed_package_getattr('comfy_api', name)
