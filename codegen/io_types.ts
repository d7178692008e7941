/**
 * The io-type spec: every V3 `io.*` type ComfyUI defines (`comfy_api/latest/_io.py`), with
 * its io_type string, the shape of its values, its widget options, and whether its values
 * cross a process boundary. This file is the single source of truth: `codegen/generate.ts`
 * turns it into `src/values/io_types.gen.ts` (TS types, zod validators, codec hints),
 * `python/pyisolate_runtime/io_types_gen.py` (the `IO_TYPES` table the Python checks read)
 * and `docs/io-types.md` (the support table).
 *
 * Edit this file, then run `npx deno run -A codegen/generate.ts` (or `npx bun
 * codegen/generate.ts`); `--check` fails when a generated file is stale.
 * @module
 */

/** The shape of a value, as the validators on both sides check it. */
export type Shape =
  | { t: "bool" }
  | { t: "int" }
  | { t: "float" }
  | { t: "number" }
  | { t: "str" }
  | { t: "none" }
  /** A torch tensor (or numpy array where noted); `rank` lists the allowed ranks, `dtype` the allowed dtype family. */
  | { t: "tensor"; rank?: readonly number[]; dtype?: "floating" | "integral" | "bool" }
  /** A dict with known fields; `rest` is the shape of any further key (absent: further keys are allowed and unchecked). */
  | { t: "dict"; fields: Readonly<Record<string, Field>>; rest?: Shape }
  /** A dict from str to values of one shape. */
  | { t: "map"; value: Shape }
  /** A list (or tuple) of items of one shape. */
  | { t: "list"; item: Shape }
  /** A fixed-length sequence (list or tuple, kept as it was) of these item shapes. */
  | { t: "seq"; items: readonly Shape[] }
  | { t: "union"; of: readonly Shape[] }
  /** Any value made of serializable parts (checked part by part when it crosses). */
  | { t: "any" }
  /** A Python object that stays in the process that made it. */
  | { t: "opaque"; py: string };

/** A field of a dict shape. */
export interface Field {
  shape: Shape;
  optional?: boolean;
}

/**
 * How values of a type are built: `primitive` (bool/int/float/str), `tensor`, `dict`, `list`,
 * `tuple`, `opaque` (a Python object: it stays in its process and crosses by handle), `any` (whatever the value is; it
 * crosses when its parts do), `dynamic` (a V3 dynamic input: a dict of nested input values).
 */
export type Kind = "primitive" | "tensor" | "dict" | "list" | "tuple" | "opaque" | "any" | "dynamic";

/** One V3 io type. */
export interface IoTypeSpec {
  /** The class name under `comfy_api.latest.io` (`io.Image`). */
  cls: string;
  /** The io_type string nodes declare (`"IMAGE"`). */
  io_type: string;
  kind: Kind;
  /** Whether the type has a widget (its value can be typed in on the node). */
  widget: boolean;
  /** Whether the type only exists as an input (ComfyUI's `ComfyTypeI`). */
  input_only?: boolean;
  /** The value shape. */
  shape: Shape;
  /** Widget options beyond the common ones, as ComfyUI's `as_dict()` spells them. */
  options: readonly string[];
  /** One line for the docs: what a value is, and anything a user must know about crossing. */
  note: string;
}

/** Options every input takes (`Input.as_dict`). */
export const COMMON_INPUT_OPTIONS: readonly string[] = ["display_name", "optional", "tooltip", "lazy", "rawLink", "advanced"];
/** Options every widget input takes on top (`WidgetInput.as_dict`). */
export const WIDGET_INPUT_OPTIONS: readonly string[] = ["default", "socketless", "widgetType", "forceInput"];
/** Options every output takes (`Output.as_dict`). */
export const OUTPUT_OPTIONS: readonly string[] = ["display_name", "tooltip", "is_output_list"];

const T = (rank?: readonly number[], dtype?: "floating" | "integral" | "bool"): Shape => {
  const s: { t: "tensor"; rank?: readonly number[]; dtype?: "floating" | "integral" | "bool" } = { t: "tensor" };
  if (rank) s.rank = rank;
  if (dtype) s.dtype = dtype;
  return s;
};
const req = (shape: Shape): Field => ({ shape });
const opt = (shape: Shape): Field => ({ shape, optional: true });
const opaque = (py: string): Shape => ({ t: "opaque", py });
const any: Shape = { t: "any" };
const str: Shape = { t: "str" };
const int: Shape = { t: "int" };
const float: Shape = { t: "float" };
const number: Shape = { t: "number" };
const bool: Shape = { t: "bool" };

const pooledDict: Shape = {
  t: "dict",
  fields: {
    pooled_output: opt(T()),
    cross_attn_controlnet: opt(T()),
    pooled_output_controlnet: opt(T()),
    mask: opt(T()),
    concat_latent_image: opt(T()),
    concat_mask: opt(T()),
    concat_image: opt(T()),
    attention_mask: opt(T()),
    conditioning_lyrics: opt(T()),
    ref_latent: opt(T()),
    stable_cascade_prior: opt(T()),
    vace_frames: opt(T()),
    vace_mask: opt(T()),
    time_dim_concat: opt(T()),
    time_dim_replace: opt(T()),
    reference_latents: opt({ t: "list", item: T() }),
    strength: opt(number),
    mask_strength: opt(number),
    start_percent: opt(number),
    end_percent: opt(number),
    guidance: opt(number),
    width: opt(int),
    height: opt(int),
  },
};

const opaqueNote = (what: string) =>
  `${what}; stays in the process that made it and crosses by handle (a proxy elsewhere)`;

/** Every V3 io type, in the order `comfy_api/latest/_io.py` defines them. */
export const IO_TYPES: readonly IoTypeSpec[] = [
  // --- widgets / primitives ---
  { cls: "Boolean", io_type: "BOOLEAN", kind: "primitive", widget: true, shape: bool, options: ["label_on", "label_off"], note: "bool" },
  {
    cls: "Int", io_type: "INT", kind: "primitive", widget: true, shape: int,
    options: ["min", "max", "step", "control_after_generate", "display"],
    note: "int of any size; seeds up to 2^64-1 stay exact (BigInt in TS above 2^53)",
  },
  {
    cls: "Float", io_type: "FLOAT", kind: "primitive", widget: true, shape: number,
    options: ["min", "max", "step", "round", "display", "gradient_stops"],
    note: "float (an int is accepted); a whole-number float (1.0) keeps its float type through the host (tag 41506)",
  },
  { cls: "String", io_type: "STRING", kind: "primitive", widget: true, shape: str, options: ["multiline", "placeholder", "dynamicPrompts"], note: "str" },
  {
    cls: "Combo", io_type: "COMBO", kind: "primitive", widget: true, shape: { t: "union", of: [str, int] },
    options: ["multiselect", "options", "control_after_generate", "image_upload", "audio_upload", "video_upload", "file_upload", "image_folder", "remote"],
    note: "one of the options (str, or int for int options)",
  },
  {
    cls: "MultiCombo", io_type: "COMBO", kind: "list", widget: true, input_only: true, shape: { t: "list", item: str },
    options: ["multiselect", "options", "control_after_generate", "multi_select", "placeholder", "chip"],
    note: "list of selected options",
  },
  // --- tensors and structures of tensors ---
  { cls: "Image", io_type: "IMAGE", kind: "tensor", widget: false, shape: T([4], "floating"), options: [], note: "tensor [B, H, W, C], float; zero-copy" },
  { cls: "WanCameraEmbedding", io_type: "WAN_CAMERA_EMBEDDING", kind: "tensor", widget: false, shape: T(), options: [], note: "tensor; zero-copy" },
  { cls: "Webcam", io_type: "WEBCAM", kind: "primitive", widget: true, shape: str, options: [], note: "str (the captured image's file name)" },
  { cls: "Mask", io_type: "MASK", kind: "tensor", widget: false, shape: T([2, 3], "floating"), options: [], note: "tensor [B, H, W] (or [H, W]), float; zero-copy" },
  {
    cls: "Latent", io_type: "LATENT", kind: "dict", widget: false,
    shape: {
      t: "dict",
      fields: {
        samples: req(T([3, 4, 5])),
        noise_mask: opt(T()),
        batch_index: opt({ t: "list", item: int }),
        type: opt(str),
      },
    },
    options: [],
    note: "dict {samples: tensor [B, C, (T,) H, W], noise_mask?, batch_index?, type?}; tensors zero-copy",
  },
  {
    cls: "Conditioning", io_type: "CONDITIONING", kind: "list", widget: false,
    shape: { t: "list", item: { t: "seq", items: [T(), pooledDict] } },
    options: [],
    note: "list of [tensor, dict] pairs; the dicts' tensors zero-copy; a dict entry holding a model object (control, gligen, hooks) crosses by handle",
  },
  { cls: "Sampler", io_type: "SAMPLER", kind: "opaque", widget: false, shape: opaque("comfy.samplers.KSAMPLER"), options: [], note: opaqueNote("sampler object") },
  { cls: "Sigmas", io_type: "SIGMAS", kind: "tensor", widget: false, shape: T([1]), options: [], note: "1-D tensor; zero-copy" },
  { cls: "Noise", io_type: "NOISE", kind: "opaque", widget: false, shape: opaque("noise generator (Noise_RandomNoise, …)"), options: [], note: opaqueNote("noise generator object with generate_noise()") },
  { cls: "Guider", io_type: "GUIDER", kind: "opaque", widget: false, shape: opaque("comfy.samplers.CFGGuider"), options: [], note: opaqueNote("CFGGuider object") },
  { cls: "Clip", io_type: "CLIP", kind: "opaque", widget: false, shape: opaque("comfy.sd.CLIP"), options: [], note: opaqueNote("CLIP object") },
  { cls: "ControlNet", io_type: "CONTROL_NET", kind: "opaque", widget: false, shape: opaque("comfy.controlnet.ControlNet"), options: [], note: opaqueNote("ControlNet object") },
  { cls: "Vae", io_type: "VAE", kind: "opaque", widget: false, shape: opaque("comfy.sd.VAE"), options: [], note: opaqueNote("VAE object") },
  { cls: "Model", io_type: "MODEL", kind: "opaque", widget: false, shape: opaque("comfy.model_patcher.ModelPatcher"), options: [], note: opaqueNote("ModelPatcher object") },
  { cls: "ClipVision", io_type: "CLIP_VISION", kind: "opaque", widget: false, shape: opaque("comfy.clip_vision.ClipVisionModel"), options: [], note: opaqueNote("ClipVisionModel object") },
  { cls: "ClipVisionOutput", io_type: "CLIP_VISION_OUTPUT", kind: "opaque", widget: false, shape: opaque("comfy.clip_vision.Output"), options: [], note: opaqueNote("clip_vision.Output object") },
  { cls: "StyleModel", io_type: "STYLE_MODEL", kind: "opaque", widget: false, shape: opaque("comfy.sd.StyleModel"), options: [], note: opaqueNote("StyleModel object") },
  { cls: "Gligen", io_type: "GLIGEN", kind: "opaque", widget: false, shape: opaque("comfy.model_patcher.ModelPatcher"), options: [], note: opaqueNote("ModelPatcher around a GLIGEN model") },
  { cls: "UpscaleModel", io_type: "UPSCALE_MODEL", kind: "opaque", widget: false, shape: opaque("spandrel.ImageModelDescriptor"), options: [], note: opaqueNote("spandrel model descriptor") },
  { cls: "LatentUpscaleModel", io_type: "LATENT_UPSCALE_MODEL", kind: "opaque", widget: false, shape: opaque("latent upscale model"), options: [], note: opaqueNote("model object") },
  {
    cls: "Audio", io_type: "AUDIO", kind: "dict", widget: false,
    shape: { t: "dict", fields: { waveform: req(T([2, 3], "floating")), sample_rate: req(int) } },
    options: [],
    note: "dict {waveform: tensor [B, C, T], sample_rate: int}; waveform zero-copy",
  },
  { cls: "Video", io_type: "VIDEO", kind: "opaque", widget: false, shape: opaque("comfy_api.input.VideoInput"), options: [], note: opaqueNote("VideoInput object") },
  { cls: "SVG", io_type: "SVG", kind: "opaque", widget: false, shape: opaque("comfy_extras.nodes_images.SVG"), options: [], note: opaqueNote("SVG object (list of BytesIO)") },
  {
    cls: "LoraModel", io_type: "LORA_MODEL", kind: "dict", widget: false, shape: { t: "map", value: T() }, options: [],
    note: "dict str → tensor; tensors zero-copy",
  },
  {
    cls: "LossMap", io_type: "LOSS_MAP", kind: "dict", widget: false,
    shape: { t: "dict", fields: { loss: req({ t: "list", item: T() }) } }, options: [],
    note: "dict {loss: list of tensors}; tensors zero-copy",
  },
  { cls: "Voxel", io_type: "VOXEL", kind: "opaque", widget: false, shape: opaque("comfy_api.latest._util.VOXEL"), options: [], note: opaqueNote("VOXEL object") },
  { cls: "Mesh", io_type: "MESH", kind: "opaque", widget: false, shape: opaque("comfy_api.latest._util.MESH"), options: [], note: opaqueNote("MESH object") },
  { cls: "Hooks", io_type: "HOOKS", kind: "opaque", widget: false, shape: opaque("comfy.hooks.HookGroup"), options: [], note: opaqueNote("HookGroup object") },
  { cls: "HookKeyframes", io_type: "HOOK_KEYFRAMES", kind: "opaque", widget: false, shape: opaque("comfy.hooks.HookKeyframeGroup"), options: [], note: opaqueNote("HookKeyframeGroup object") },
  {
    cls: "TimestepsRange", io_type: "TIMESTEPS_RANGE", kind: "tuple", widget: false, shape: { t: "seq", items: [number, number] }, options: [],
    note: "tuple (start, end), each between 0.0 and 1.0; stays a tuple",
  },
  { cls: "LatentOperation", io_type: "LATENT_OPERATION", kind: "opaque", widget: false, shape: opaque("callable"), options: [], note: opaqueNote("function tensor → tensor") },
  { cls: "FlowControl", io_type: "FLOW_CONTROL", kind: "tuple", widget: false, shape: { t: "seq", items: [str, any] }, options: [], note: "tuple (str, value); crosses when the value does" },
  {
    cls: "Accumulation", io_type: "ACCUMULATION", kind: "dict", widget: false,
    shape: { t: "dict", fields: { accum: req({ t: "list", item: any }) } }, options: [],
    note: "dict {accum: list}; crosses when its items do",
  },
  {
    cls: "Load3DCamera", io_type: "LOAD3D_CAMERA", kind: "dict", widget: false,
    shape: {
      t: "dict",
      fields: { position: req({ t: "map", value: number }), target: req({ t: "map", value: number }), zoom: req(number), cameraType: req(str) },
    },
    options: [],
    note: "dict {position, target, zoom, cameraType}",
  },
  {
    cls: "Load3D", io_type: "LOAD_3D", kind: "dict", widget: false,
    shape: { t: "dict", fields: { image: req(str), mask: req(str), normal: req(str), camera_info: req(any), recording: opt(str) } },
    options: [],
    note: "dict {image, mask, normal, camera_info, recording?} of file names",
  },
  {
    cls: "Load3DAnimation", io_type: "LOAD_3D_ANIMATION", kind: "dict", widget: false,
    shape: { t: "dict", fields: { image: req(str), mask: req(str), normal: req(str), camera_info: req(any), recording: opt(str) } },
    options: [],
    note: "as LOAD_3D",
  },
  { cls: "Photomaker", io_type: "PHOTOMAKER", kind: "opaque", widget: false, shape: opaque("PhotoMaker model"), options: [], note: opaqueNote("model object") },
  { cls: "Point", io_type: "POINT", kind: "any", widget: false, shape: any, options: [], note: "no fixed shape; crosses when the value is made of serializable parts" },
  { cls: "FaceAnalysis", io_type: "FACE_ANALYSIS", kind: "opaque", widget: false, shape: opaque("face analysis model"), options: [], note: opaqueNote("analysis model object") },
  { cls: "BBOX", io_type: "BBOX", kind: "any", widget: false, shape: any, options: [], note: "no fixed shape; crosses when the value is made of serializable parts" },
  { cls: "SEGS", io_type: "SEGS", kind: "any", widget: false, shape: any, options: [], note: "no fixed shape; crosses when the value is made of serializable parts" },
  { cls: "AnyType", io_type: "*", kind: "any", widget: false, shape: any, options: [], note: "any value; crosses when it is made of serializable parts" },
  { cls: "MODEL_PATCH", io_type: "MODEL_PATCH", kind: "opaque", widget: false, shape: opaque("model patch"), options: [], note: opaqueNote("model patch object") },
  { cls: "AudioEncoder", io_type: "AUDIO_ENCODER", kind: "opaque", widget: false, shape: opaque("audio encoder model"), options: [], note: opaqueNote("encoder model object") },
  {
    cls: "AudioEncoderOutput", io_type: "AUDIO_ENCODER_OUTPUT", kind: "any", widget: false, shape: any, options: [],
    note: "encoder output (a dict of tensors); crosses when it is made of serializable parts",
  },
  {
    cls: "Tracks", io_type: "TRACKS", kind: "dict", widget: false,
    shape: { t: "dict", fields: { track_path: req(T()), track_visibility: req(T()) } }, options: [],
    note: "dict {track_path, track_visibility} of tensors; zero-copy",
  },
  { cls: "File3DAny", io_type: "FILE_3D", kind: "any", widget: false, shape: any, options: [], note: "3D file reference; crosses when it is made of serializable parts" },
  { cls: "File3DGLB", io_type: "FILE_3D_GLB", kind: "any", widget: false, shape: any, options: [], note: "as FILE_3D" },
  { cls: "File3DGLTF", io_type: "FILE_3D_GLTF", kind: "any", widget: false, shape: any, options: [], note: "as FILE_3D" },
  { cls: "File3DFBX", io_type: "FILE_3D_FBX", kind: "any", widget: false, shape: any, options: [], note: "as FILE_3D" },
  { cls: "File3DOBJ", io_type: "FILE_3D_OBJ", kind: "any", widget: false, shape: any, options: [], note: "as FILE_3D" },
  { cls: "File3DSTL", io_type: "FILE_3D_STL", kind: "any", widget: false, shape: any, options: [], note: "as FILE_3D" },
  { cls: "File3DUSDZ", io_type: "FILE_3D_USDZ", kind: "any", widget: false, shape: any, options: [], note: "as FILE_3D" },
  { cls: "ImageCompare", io_type: "IMAGECOMPARE", kind: "dict", widget: true, input_only: true, shape: { t: "map", value: any }, options: [], note: "comparison widget state (dict)" },
  { cls: "Color", io_type: "COLOR", kind: "primitive", widget: true, shape: str, options: [], note: "str \"#rrggbb\"" },
  {
    cls: "BoundingBox", io_type: "BOUNDING_BOX", kind: "dict", widget: true,
    shape: { t: "dict", fields: { x: req(number), y: req(number), width: req(number), height: req(number) } },
    options: ["component"],
    note: "dict {x, y, width, height}",
  },
  { cls: "Curve", io_type: "CURVE", kind: "list", widget: true, shape: any, options: [], note: "curve points ([x, y] pairs, or the widget's {points, interpolation})" },
  { cls: "Histogram", io_type: "HISTOGRAM", kind: "list", widget: false, shape: { t: "list", item: any }, options: [], note: "list" },
  // --- dynamic inputs ---
  { cls: "MultiType", io_type: "COMFY_MULTITYPED_V3", kind: "any", widget: false, input_only: true, shape: any, options: ["types"], note: "a value of one of the listed types; checked as that type" },
  { cls: "MatchType", io_type: "COMFY_MATCHTYPE_V3", kind: "any", widget: false, shape: any, options: ["template"], note: "a value of the matched type; checked as that type" },
  { cls: "Autogrow", io_type: "COMFY_AUTOGROW_V3", kind: "dynamic", widget: false, input_only: true, shape: { t: "map", value: any }, options: ["template"], note: "dict of the grown inputs' values" },
  { cls: "DynamicCombo", io_type: "COMFY_DYNAMICCOMBO_V3", kind: "dynamic", widget: true, input_only: true, shape: { t: "map", value: any }, options: ["options"], note: "dict: the chosen key and its inputs' values" },
  { cls: "DynamicSlot", io_type: "COMFY_DYNAMICSLOT_V3", kind: "dynamic", widget: false, input_only: true, shape: { t: "map", value: any }, options: ["slotType", "inputs"], note: "dict of the slot's inputs' values" },
];
