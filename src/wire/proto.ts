// Loads the wire contract (proto/kvbridge/v1) once and exposes typed service constructors.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../config/package-root.js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { ProtoGrpcType as AdminProto } from "./generated/admin.js";
import type { ProtoGrpcType as EngineProto } from "./generated/engine.js";
import type { ProtoGrpcType as InspectProto } from "./generated/inspect.js";
import type { ProtoGrpcType as ModelsProto } from "./generated/models.js";
import type { ProtoGrpcType as ReceiverProto } from "./generated/receiver.js";

/**
 * Bumped on every wire change. 2: Hello negotiates capabilities (the data-plane commit), says which
 * data planes are not offered and why; Release takes several request ids. A node speaking 2 still
 * serves senders of 1 (answering in version 1, without the new fields), and a sender of 2 falls back
 * to 1 against a node that refuses 2. Other versions are refused with a clear error.
 */
export const PROTOCOL_VERSION = 2;
/** The oldest version this node still speaks. */
export const MIN_PROTOCOL_VERSION = 1;

/** Most request ids one Release may name (ReleaseRequest.request_ids, protocol 2). */
export const MAX_RELEASE_IDS = 4096;

/** Hello capability: the request's Commit travels on the data plane after its last write (docs/protocol.md). */
export const CAPABILITY_DATA_PLANE_COMMIT = "data_plane_commit";

/** proto/ sits at the package root, next to src/ and dist/. */
export function protoDir(): string {
  const dir = path.join(packageRoot(), "proto");
  if (!existsSync(path.join(dir, "kvbridge", "v1", "receiver.proto"))) {
    throw new KvbridgeError("INTERNAL", `kvbridge's wire contract ${path.join(dir, "kvbridge", "v1", "receiver.proto")} is missing; the installation is incomplete`);
  }
  return dir;
}

export const LOADER_OPTIONS: protoLoader.Options = {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

type Contract = ReceiverProto & InspectProto & EngineProto & AdminProto & ModelsProto;
type V1 = Contract["kvbridge"]["v1"];
let cached: V1 | undefined;

export function kvbridgeV1(): V1 {
  if (!cached) {
    const dir = protoDir();
    // Every service file of the package (receiver, inspect, engine, admin, models ...).
    const files = readdirSync(path.join(dir, "kvbridge", "v1"))
      .filter((f) => f.endsWith(".proto"))
      .map((f) => `kvbridge/v1/${f}`);
    const def = protoLoader.loadSync(files, {
      ...LOADER_OPTIONS,
      includeDirs: [dir],
    });
    // The one cast of the contract: grpc-js types a loaded package as untyped constructors, and the
    // generated ProtoGrpcType types (scripts/gen-proto.sh, from the same .proto files) say what it holds.
    const loaded = grpc.loadPackageDefinition(def) as unknown as Contract;
    cached = loaded.kvbridge.v1;
  }
  return cached;
}
