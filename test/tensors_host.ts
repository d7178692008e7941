/**
 * A host of its own, for the "killed host" test: starts the producer pack, takes one value of
 * every type (its segments retained), prints its pid, the Python pid and the segment names,
 * then waits to be killed.
 */
import process from "node:process";
import { HostCore } from "../src/process/host_core.ts";
import { SegmentRegistry } from "../src/values/segments.ts";
import { collectTensorRefs } from "../src/values/tensors.ts";
import { PYTHON } from "./tensors_util.ts";

const producerPath = process.argv[2]!;
const registry = new SegmentRegistry();
await registry.claim();
await registry.sweepDeadHosts();
const host = new HostCore({ hostPython: PYTHON, packs: [{ name: "TensorProducer", path: producerPath, kind: "isolated" }] });
const producer = host.processFor("TensorProducer");
const [values] = (await producer.call("Producer", "make")) as [unknown];
registry.retain(values);
const segments = [...new Set(collectTensorRefs(values).map((r) => r.segment).filter(Boolean))];
process.stdout.write(`${JSON.stringify({ hostPid: process.pid, pythonPid: producer.pid, segments })}\n`);
setInterval(() => {}, 1000);
