/**
 * The runtime's version. It is part of every environment fingerprint, so a new runtime
 * rebuilds environments made by an older one. Kept equal to `version` in package.json
 * (a test checks it).
 * @module
 */

/** The version of this runtime, e.g. `"0.1.0"`. */
export const RUNTIME_VERSION = "0.1.0";
