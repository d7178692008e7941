"""DeepDiffNode: compares two JSON values with deepdiff, installed only in this pack's
environment (the demo pack). V3 API."""
import json

from comfy_api.latest import ComfyExtension, io, ui
from deepdiff import DeepDiff


class DeepDiffCompare(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="DeepDiffCompare",
            display_name="Deep Diff",
            category="pyisolate/examples",
            description="Compares two JSON texts and reports what differs.",
            is_output_node=True,
            inputs=[
                io.String.Input("left", default='{"a": 1}', multiline=True),
                io.String.Input("right", default='{"a": 2}', multiline=True),
                io.Boolean.Input("ignore_order", default=True),
            ],
            outputs=[io.String.Output(display_name="diff"), io.Boolean.Output(display_name="identical")],
        )

    @classmethod
    def execute(cls, left, right, ignore_order):
        diff = DeepDiff(json.loads(left), json.loads(right), ignore_order=ignore_order)
        report = diff.to_json()
        return io.NodeOutput(report, not diff, ui=ui.PreviewText(report))


class DeepDiffExtension(ComfyExtension):
    async def get_node_list(self):
        return [DeepDiffCompare]


async def comfy_entrypoint():
    return DeepDiffExtension()
