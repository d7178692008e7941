/**
 * Types the executor works with: ComfyUI's API-format prompt, its `/object_info` node
 * entries, its validation errors and its event names.
 * @module
 */

/** A link to another node's output: `[node_id, output_index]`. */
export type Link = [string, number];

/** One node of an API-format prompt. */
export interface PromptNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string };
}

/** An API-format prompt: `{ "<id>": { class_type, inputs } }`. */
export type Prompt = Record<string, PromptNode>;

/** An input spec as `/object_info` gives it: `[type, options?]`; `type` is a string or a combo list. */
export type InputSpec = [string | unknown[], Record<string, unknown>?] | [string | unknown[]];

/** A node's `/object_info` entry (the fields the executor reads; the rest passes through). */
export interface NodeInfo {
  name: string;
  display_name?: string;
  category?: string;
  input: {
    required?: Record<string, InputSpec>;
    optional?: Record<string, InputSpec>;
    hidden?: Record<string, unknown>;
  };
  input_order?: Record<string, string[]>;
  output: (string | unknown[])[];
  output_is_list?: boolean[];
  output_name?: string[];
  output_node?: boolean;
  python_module?: string;
  [key: string]: unknown;
}

/** One reason a node failed validation, in ComfyUI's shape. */
export interface ValidationError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** Per-node validation errors, keyed by node id, in ComfyUI's `node_errors` shape. */
export type NodeErrors = Record<string, { errors: ValidationError[]; dependent_outputs: string[]; class_type: string }>;

/** The result of validating a prompt, in the shape ComfyUI's `/prompt` answers with. */
export interface ValidationResult {
  ok: boolean;
  /** The prompt-level error when `ok` is false. */
  error?: ValidationError;
  /** Output nodes that validated. */
  outputs: string[];
  node_errors: NodeErrors;
}

/** ComfyUI's execution event names. */
export type ExecutionEventType =
  | "execution_start"
  | "execution_cached"
  | "executing"
  | "executed"
  | "progress"
  | "progress_state"
  | "execution_success"
  | "execution_error"
  | "execution_interrupted";

/**
 * An event in ComfyUI's `{type, data}` shape. A binary event (a preview image, a node's
 * progress text: what ComfyUI sends as a binary WebSocket frame) has a number as its type
 * (ComfyUI's `BinaryEventTypes`) and its payload in `data.bytes`.
 */
export interface ExecutionEvent {
  type: ExecutionEventType | (string & {}) | number;
  data: Record<string, unknown>;
  /**
   * For an event a node sent (`PromptServer.instance.send_sync(event, data, sid)`, progress):
   * the client it is for, `null` for every client. Absent on the executor's own events,
   * which are for the client whose prompt runs.
   */
  sid?: string | null;
}

/** What one node execution returns: one list of values per output, and its `ui` dict. */
export interface NodeRunResult {
  outputs: unknown[][];
  ui: Record<string, unknown> | null;
}

/** Where a node class runs. */
export interface NodeOwner {
  /** The node pack that defines the class. */
  pack: string;
  /** The process that runs it: the pack's own process when isolated, the shared one otherwise. */
  process: string;
  isolated: boolean;
}

/** The executor's view of the nodes it can run. The host implements it over its processes. */
export interface NodeBackend {
  /** The class's `/object_info` entry, or undefined for an unknown class. */
  info(classType: string): NodeInfo | undefined;
  /** Which pack and process run the class. */
  owner(classType: string): NodeOwner | undefined;
  /** Whether the class defines `IS_CHANGED` / `fingerprint_inputs`. */
  hasIsChanged(classType: string): boolean;
  /** Whether the class defines `VALIDATE_INPUTS` / `validate_inputs`. */
  hasValidateInputs(classType: string): boolean;
  /**
   * Runs one node. `inputs` maps each input name to its list of values (a linked input
   * carries the upstream output's list; a widget value is a one-item list), as ComfyUI does.
   */
  execute(
    classType: string,
    inputs: Record<string, unknown[]>,
    hidden: HiddenValues,
    nodeId: string,
  ): Promise<NodeRunResult>;
  /** The node's `IS_CHANGED` value for these inputs (compared between runs). */
  isChanged(classType: string, inputs: Record<string, unknown[]>, hidden: HiddenValues, nodeId: string): Promise<unknown>;
  /** The node's `VALIDATE_INPUTS` answer: `true`, or the reason it refused. */
  validateInputs(classType: string, inputs: Record<string, unknown[]>, nodeId: string): Promise<true | string>;
  /** Keeps the tensor segments a cached value refers to alive. */
  retain?(value: unknown): void;
  /** Releases what {@link NodeBackend.retain} kept. */
  release?(value: unknown): void;
  /** Whether a cached value can still be used (false when it holds an object whose process exited: the node runs again). */
  usable?(value: unknown): boolean;
  /**
   * Stops the nodes of prompt `promptId` that run now (every live process's running node when
   * no id is given).
   */
  interrupt?(promptId?: string): void;
  /** A prompt's run begins (the executor calls it before anything of the run reaches the backend). */
  beginPrompt?(promptId: string): void;
  /** A prompt's run ended. */
  endPrompt?(promptId: string): void;
}

/** Hidden inputs ComfyUI passes to nodes that ask for them (`prompt` and `extra_pnginfo` only to nodes that declare `PROMPT` / `EXTRA_PNGINFO`). */
export interface HiddenValues {
  prompt?: Prompt;
  extra_pnginfo?: unknown;
  unique_id: string;
  prompt_id: string;
}
