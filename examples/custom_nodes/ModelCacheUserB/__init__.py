"""ModelCacheUserB: an isolated V3 pack that uses the shared ``ModelCache`` from a plain
(``def``) node: there, ``ModelCache().get_model(name)`` waits for the shared process and
returns the model itself, with no ``await``.

``model_cache`` is a shared module: start the host with
``sharedModules: ["examples/shared_modules"]`` (CLI: ``--shared-modules examples/shared_modules``;
or put its folder on the processes' path).
"""
import os

from comfy_api.latest import ComfyExtension, io, ui

try:
    from model_cache import ModelCache, predict
except ImportError as e:  # the pack still loads; its node says what is missing
    ModelCache = None
    _IMPORT_ERROR = e


class ModelCacheUserB(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ModelCacheUserB",
            display_name="Model Cache User B",
            category="pyisolate/examples/model_cache",
            description="Gets a model from the shared ModelCache (loaded once for every process) and uses it.",
            is_output_node=True,
            inputs=[io.String.Input("model_name", default="tiny-unet"), io.Float.Input("x", default=1.0, min=-100.0, max=100.0, step=0.1)],
            outputs=[io.String.Output(display_name="report")],
        )

    @classmethod
    def execute(cls, model_name, x):
        if ModelCache is None:
            raise RuntimeError(
                f"ModelCacheUserB needs the shared module 'model_cache' ({_IMPORT_ERROR}); start the host with "
                "sharedModules: ['examples/shared_modules'] (CLI: --shared-modules examples/shared_modules) "
                "so every process can import it."
            )
        model = ModelCache().get_model(model_name)  # plain code: the call waits and returns the model
        report = (
            f"B pid={os.getpid()} model={model['name']} id={model['id']} load={model['load']} "
            f"loaded_in={model['loaded_in_pid']} predict={predict(model, x):.6f}"
        )
        return io.NodeOutput(report, ui=ui.PreviewText(report))


class ModelCacheUserBExtension(ComfyExtension):
    async def get_node_list(self):
        return [ModelCacheUserB]


async def comfy_entrypoint():
    return ModelCacheUserBExtension()
