"""The parts of ComfyUI's ``comfy`` package that node packs use, provided by pyisolate."""
