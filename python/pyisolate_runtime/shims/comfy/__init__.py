"""The parts of ComfyUI's ``comfy`` package that node packs use, provided by pyisolate."""


def __getattr__(name: str):  # ``from comfy import <a ComfyUI-only module>`` says to pass --comfyui DIR
    from pyisolate_runtime.comfyui.imports import shimmed_package_getattr
    return shimmed_package_getattr('comfy', name)
