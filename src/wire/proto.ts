// Loads the wire contract (proto/kvbridge/v1) once and exposes typed service constructors.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ProtoGrpcType as AdminProto } from "./generated/admin.js";
import type { ProtoGrpcType as EngineProto } from "./generated/engine.js";
import type { ProtoGrpcType as InspectProto } from "./generated/inspect.js";
import type { ProtoGrpcType as ReceiverProto } from "./generated/receiver.js";

/** Bumped on every wire change; peers with another version are refused with a clear error. */
export const PROTOCOL_VERSION = 1;

/** proto/ sits at the package root, found by walking up from this file (src/ or dist/src/). */
export function protoDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, "proto");
    if (existsSync(path.join(candidate, "kvbridge", "v1", "receiver.proto"))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error("kvbridge: proto/kvbridge/v1/receiver.proto not found above " + fileURLToPath(import.meta.url));
}

export const LOADER_OPTIONS: protoLoader.Options = {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

type Contract = ReceiverProto & InspectProto & EngineProto & AdminProto;
type V1 = Contract["kvbridge"]["v1"];
let cached: V1 | undefined;

export function kvbridgeV1(): V1 {
  if (!cached) {
    const dir = protoDir();
    // Every service file of the package (receiver, inspect, engine, admin ...).
    const files = readdirSync(path.join(dir, "kvbridge", "v1"))
      .filter((f) => f.endsWith(".proto"))
      .map((f) => `kvbridge/v1/${f}`);
    const def = protoLoader.loadSync(files, {
      ...LOADER_OPTIONS,
      includeDirs: [dir],
    });
    const loaded = grpc.loadPackageDefinition(def) as unknown as Contract;
    cached = loaded.kvbridge.v1;
  }
  return cached;
}
