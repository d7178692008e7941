/**
 * Packs of the tensor e2e suite, written into a temporary directory at test time: a producer
 * that makes one value of every serializable io type, and a consumer that describes what it
 * received. A description is exact: tensors by dtype, shape, strides and a hash of their bytes;
 * tuples and lists told apart; ints as they are.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const COMMON = String.raw`
import hashlib, os, sys
import torch, numpy as np
from pyisolate_runtime import rpc, tensors
from pyisolate_runtime import io_types_gen as g


def describe(v):
    """An exact, CBOR-friendly description of a value."""
    if isinstance(v, torch.Tensor):
        raw = v.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b""
        return {"tensor": str(v.dtype), "shape": list(v.shape), "strides": list(v.stride()),
                "sha": hashlib.sha256(raw).hexdigest()}
    if isinstance(v, np.ndarray):
        return {"ndarray": v.dtype.str, "shape": list(v.shape), "sha": hashlib.sha256(v.tobytes()).hexdigest()}
    if isinstance(v, tuple):
        return {"tuple": [describe(x) for x in v]}
    if isinstance(v, list):
        return {"list": [describe(x) for x in v]}
    if isinstance(v, dict):
        return {"dict": [[describe(k), describe(x)] for k, x in v.items()]}
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return {"float": v}
    return {type(v).__name__: v}


def segment_of(t):
    """The file a tensor's memory is mapped from, per /proc/self/maps (None: private memory)."""
    ptr = t.data_ptr()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= ptr < hi:
                return parts[5] if len(parts) > 5 else None
    return None
`;

const PRODUCER = String.raw`${COMMON}

# Floats here are never whole numbers: a whole float (1.0) reaches Python as an int after a
# trip through the TS codec (see the test "keeps whole-number floats floats").
def samples():
    g_ = torch.Generator().manual_seed(1234)
    r = lambda *s, dtype=torch.float32: torch.rand(*s, generator=g_).to(dtype)
    image = r(1, 64, 48, 3)
    return {
        "BOOLEAN": True,
        "INT": 2**64 - 1,
        "FLOAT": 0.1 + 0.2,
        "STRING": "héllo ✓",
        "COMBO": "euler_ancestral",
        "IMAGE": image,
        "WAN_CAMERA_EMBEDDING": r(1, 6, 8, 4, 4),
        "WEBCAM": "webcam_0001.png",
        "MASK": r(2, 64, 48),
        "LATENT": {"samples": torch.randn(2, 4, 8, 6, generator=g_), "noise_mask": r(2, 1, 8, 6),
                   "batch_index": [0, 2**53 + 1], "type": "image"},
        "CONDITIONING": [
            [torch.randn(1, 77, 64, generator=g_), {"pooled_output": r(1, 32), "area": (64, 64, 0, 0),
             "strength": 0.75, "reference_latents": [r(1, 4, 8, 6)], "start_percent": 0.125}],
            [torch.randn(1, 77, 64, generator=g_).to(torch.bfloat16), {"pooled_output": r(1, 32), "mask": r(1, 64, 48) > 0.5}],
        ],
        "SIGMAS": torch.linspace(14.6146, 0.0, 21, dtype=torch.float64),
        "AUDIO": {"waveform": r(1, 2, 4800), "sample_rate": 48000},
        "LORA_MODEL": {"lora_unet_down.alpha": torch.tensor(8.0), "lora_unet_down.weight": r(4, 16, dtype=torch.float16)},
        "LOSS_MAP": {"loss": [r(1, 8, 6), r(1, 8, 6)]},
        "TIMESTEPS_RANGE": (0.25, 0.5),
        "FLOW_CONTROL": ("stack", [1, (2, 3)]),
        "ACCUMULATION": {"accum": [r(2), "x", (1,), [2]]},
        "LOAD3D_CAMERA": {"position": {"x": 1, "y": 2.5, "z": -3}, "target": {"x": 0, "y": 0, "z": 0}, "zoom": 1, "cameraType": "perspective"},
        "LOAD_3D": {"image": "a.png", "mask": "b.png", "normal": "c.png", "camera_info": {"zoom": 1}},
        "LOAD_3D_ANIMATION": {"image": "a.png", "mask": "b.png", "normal": "c.png", "camera_info": {}, "recording": "r.webm"},
        "POINT": [(12, 34), (56, 78)],
        "BBOX": [(0, 0, 64, 64)],
        "SEGS": ((64, 48), [{"crop_region": (0, 0, 32, 32), "cropped_mask": np.ones((32, 32), dtype=np.float32), "label": "face"}]),
        "*": {"anything": [None, b"\x00\xff", -2**63]},
        "AUDIO_ENCODER_OUTPUT": {"encoded_audio": r(1, 50, 32), "encoded_audio_all_layers": [r(1, 50, 32)]},
        "TRACKS": {"track_path": r(8, 2, 2), "track_visibility": r(8, 2) > 0.5},
        "FILE_3D": "model.glb", "FILE_3D_GLB": "m.glb", "FILE_3D_GLTF": "m.gltf", "FILE_3D_FBX": "m.fbx",
        "FILE_3D_OBJ": "m.obj", "FILE_3D_STL": "m.stl", "FILE_3D_USDZ": "m.usdz",
        "IMAGECOMPARE": {"a_images": [], "b_images": []},
        "COLOR": "#ff8800",
        "BOUNDING_BOX": {"x": 0, "y": 0, "width": 512, "height": 512},
        "CURVE": [(0.125, 0.25), (0.75, 0.875)],
        "HISTOGRAM": [0, 1, 2, 3],
        "COMFY_MULTITYPED_V3": image.permute(0, 3, 1, 2),
        "COMFY_MATCHTYPE_V3": np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::-1],
        "COMFY_AUTOGROW_V3": {"image0": image, "image1": r(1, 64, 48, 3, dtype=torch.float16)},
        "COMFY_DYNAMICCOMBO_V3": {"mode": "fast", "steps": 20},
        "COMFY_DYNAMICSLOT_V3": {"slot": None, "strength": 0.5},
    }


class Producer:
    cached = None

    def make(self):
        values = samples()
        for io_type, v in values.items():
            g.validate(io_type, v)
            g.check_crossing(io_type, v)
        self.cached = values
        return [values, {k: describe(v) for k, v in values.items()}]

    def make_one(self, io_type):
        v = samples()[io_type]
        self.cached = {io_type: v}
        return v

    def image(self, n):
        t = torch.rand(1, n, n, 3)
        self.cached = {"IMAGE": t}
        return [t, describe(t)]

    def opaque(self):
        class ModelPatcher:
            pass
        m = ModelPatcher()
        g.check_crossing("MODEL", m, node="CheckpointLoaderSimple", slot="MODEL")  # passes: it crosses by handle
        return m

    def whole_floats(self):
        v = [1.0, 0.0, -2.0, 1e300]
        return [v, describe(v)]

    def pid_segments(self):
        return tensors.list_segments(tensors.host_pid())


rpc.serve("Producer", Producer())
`;

const CONSUMER = String.raw`${COMMON}

class Consumer:
    held = None

    def describe(self, values):
        for io_type, v in values.items():
            g.validate(io_type, v)
        return {k: describe(v) for k, v in values.items()}

    def describe_raw(self, v):
        return describe(v)

    def where(self, t):
        """Where the received tensor's memory comes from."""
        self.held = t
        return [segment_of(t), tensors.list_segments(tensors.host_pid())]

    def scribble(self, t):
        """Writes into its input, in place, and says what it now holds."""
        t.mul_(-1).add_(7)
        self.held = t
        return describe(t)

    def held_back(self):
        """Sends back what it holds (a tensor it wrote into, say)."""
        return self.held

    def forward(self, t):
        """Sends the received tensor on, unchanged."""
        self.held = t
        return t


rpc.serve("Consumer", Consumer())
`;

/** Writes the producer and consumer packs; returns their directories. */
export function writeTensorPacks(): { root: string; producer: string; consumer: string } {
  const root = mkdtempSync(join(tmpdir(), "pyisolate-tensor-packs-"));
  const producer = join(root, "TensorProducer");
  const consumer = join(root, "TensorConsumer");
  mkdirSync(producer);
  mkdirSync(consumer);
  writeFileSync(join(producer, "__init__.py"), PRODUCER);
  writeFileSync(join(consumer, "__init__.py"), CONSUMER);
  return { root, producer, consumer };
}
