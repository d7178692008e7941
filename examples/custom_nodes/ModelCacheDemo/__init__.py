"""ModelCacheDemo: a shared pack (no manifest) next to the shared ``ModelCache``'s one real
instance — it runs in the shared Python process, where ``ModelCache()`` is the instance
itself, not a proxy — and reports how many times each model was loaded.

``model_cache`` is a shared module: start the host with
``sharedModules: ["examples/shared_modules"]`` (CLI: ``--shared-modules examples/shared_modules``).
This pack imports it when the shared process starts, so the module is complete before the
first call from an isolated process arrives.
"""
import json
import os

try:
    import model_cache
except ImportError as e:  # the pack still loads; its node says what is missing
    model_cache = None
    _IMPORT_ERROR = e


class ModelCacheStats:
    """Load counts of the shared ModelCache, after the nodes linked to ``after`` ran."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}, "optional": {"after": ("STRING", {"forceInput": True}), "after_2": ("STRING", {"forceInput": True})}}

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("loads",)
    FUNCTION = "stats"
    OUTPUT_NODE = True
    CATEGORY = "pyisolate/examples/model_cache"

    def stats(self, after=None, after_2=None):
        if model_cache is None:
            raise RuntimeError(
                f"ModelCacheStats needs the shared module 'model_cache' ({_IMPORT_ERROR}); start the host with "
                "sharedModules: ['examples/shared_modules'] (CLI: --shared-modules examples/shared_modules)."
            )
        report = json.dumps({"loads": model_cache.ModelCache().load_counts(), "pid": os.getpid()}, sort_keys=True)
        return {"ui": {"text": [report]}, "result": (report,)}


NODE_CLASS_MAPPINGS = {"ModelCacheStats": ModelCacheStats}
NODE_DISPLAY_NAME_MAPPINGS = {"ModelCacheStats": "Model Cache Stats"}
