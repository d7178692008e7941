"""ModelCacheUserA: an isolated V1 pack that uses the shared ``ModelCache`` the usual
ProxiedSingleton way — ``cache = ModelCache()`` returns a proxy to the instance in the shared
process, and ``await cache.get_model(name)`` gets the model from there. The node function is
``async def`` so it can ``await``.

``model_cache`` is a shared module: start the host with
``sharedModules: ["examples/shared_modules"]`` (CLI: ``--shared-modules examples/shared_modules``;
or put its folder on the processes' path).
"""
import os

try:
    from model_cache import ModelCache, predict
except ImportError as e:  # the pack still loads; its node says what is missing
    ModelCache = None
    _IMPORT_ERROR = e


def _require_cache():
    if ModelCache is None:
        raise RuntimeError(
            f"ModelCacheUserA needs the shared module 'model_cache' ({_IMPORT_ERROR}); start the host with "
            "sharedModules: ['examples/shared_modules'] (CLI: --shared-modules examples/shared_modules) "
            "so every process can import it."
        )
    return ModelCache()


class ModelCacheUserA:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_name": ("STRING", {"default": "tiny-unet"}),
                "x": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.1}),
            }
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("report",)
    FUNCTION = "process"
    OUTPUT_NODE = True
    CATEGORY = "pyisolate/examples/model_cache"
    DESCRIPTION = "Gets a model from the shared ModelCache (loaded once for every process) and uses it."

    async def process(self, model_name, x):
        cache = _require_cache()  # a proxy to the shared process's instance
        model = await cache.get_model(model_name)
        report = (
            f"A pid={os.getpid()} model={model['name']} id={model['id']} load={model['load']} "
            f"loaded_in={model['loaded_in_pid']} predict={predict(model, x):.6f}"
        )
        return {"ui": {"text": [report]}, "result": (report,)}


NODE_CLASS_MAPPINGS = {"ModelCacheUserA": ModelCacheUserA}
NODE_DISPLAY_NAME_MAPPINGS = {"ModelCacheUserA": "Model Cache User A"}
