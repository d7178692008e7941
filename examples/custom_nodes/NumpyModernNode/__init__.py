"""NumpyModernNode: a V3-style node pack (comfy_api.latest) that needs numpy >= 2.1.

It runs in its own environment, next to NumpyLegacyNode (numpy 1.26.4). ``np.strings``
exists only from numpy 2, so these nodes would fail in a numpy 1 environment.
"""
import numpy as np
import torch
from comfy_api.latest import ComfyExtension, io, ui


class NumpyModernVersion(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="NumpyModernVersion",
            display_name="Numpy Version (2.x)",
            category="pyisolate/examples",
            description="The numpy version of this pack's environment (>= 2.1).",
            is_output_node=True,
            inputs=[io.String.Input("label", default="numpy")],
            outputs=[io.String.Output(display_name="numpy_version")],
        )

    @classmethod
    def execute(cls, label):
        shout = str(np.strings.upper(np.array([label]))[0])
        text = f"{shout} {np.__version__}"
        return io.NodeOutput(text, ui=ui.PreviewText(text))


class NumpyModernBrightness(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="NumpyModernBrightness",
            display_name="Brightness (numpy 2.x)",
            category="pyisolate/examples",
            inputs=[io.Image.Input("image"), io.Float.Input("amount", default=0.1, min=-1.0, max=1.0, step=0.01)],
            outputs=[io.Image.Output(display_name="image"), io.String.Output(display_name="numpy_version")],
        )

    @classmethod
    def execute(cls, image, amount):
        pixels = np.clip(image.cpu().numpy() + amount, 0.0, 1.0)
        return io.NodeOutput(torch.from_numpy(pixels.astype(np.float32)), np.__version__)


class NumpyModernExtension(ComfyExtension):
    async def get_node_list(self):
        return [NumpyModernVersion, NumpyModernBrightness]


async def comfy_entrypoint():
    return NumpyModernExtension()
