// The process's one node-llama-cpp binding (prebuilt CPU binary): models, contexts and grammars
// of every engine in the process come from it.

import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import { KvbridgeError } from "../errors/kvbridge-error.js";

let sharedLlama: Promise<Llama> | null = null;

/** One llama.cpp binding per process; models and contexts are per engine. */
export function loadLlama(): Promise<Llama> {
  sharedLlama ??= getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error }).catch((err: unknown) => {
    sharedLlama = null;
    throw new KvbridgeError("UNAVAILABLE", `node-llama-cpp could not load its prebuilt CPU binary: ${(err as Error).message}`, { cause: err });
  });
  return sharedLlama;
}
