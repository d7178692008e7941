"""Shared e2e suite: a pack without a manifest, so it runs in the shared process."""
import os

import folder_paths


class E2eSharedInfo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"label": ("STRING", {"default": "shared"})}}

    RETURN_TYPES = ()
    FUNCTION = "info"
    OUTPUT_NODE = True
    CATEGORY = "pyisolate/e2e"

    def info(self, label):
        # folder_paths is a host service: this is a call from Python to the host.
        return {"ui": {"text": [label], "pid": [os.getpid()], "output_dir": [folder_paths.get_output_directory()]}}


NODE_CLASS_MAPPINGS = {"E2eSharedInfo": E2eSharedInfo}
