// DataPlaneOffer <-> its wire form in HelloResponse.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { DataPlaneOffer as WireOffer, DataPlaneOffer__Output as WireOfferOut } from "../wire/generated/kvbridge/v1/DataPlaneOffer.js";
import type { DataPlaneOffer } from "../transport/transport.js";

export function offerToWire(o: DataPlaneOffer): WireOffer {
  switch (o.kind) {
    case "tcp":
      return { transport: "tcp", tcpHost: o.host, tcpPort: o.port };
    case "ucx":
      return {
        transport: "ucx",
        ucxWorkerAddress: o.workerAddress,
        ucxRkey: o.rkey,
        // x86-64 and aarch64 user-space addresses fit in 48 bits, well inside a double's 53.
        ucxBaseAddress: Number(o.baseAddress),
      };
  }
}

export function offerFromWire(w: WireOfferOut): DataPlaneOffer {
  switch (w.transport) {
    case "tcp":
      if (!w.tcpHost || !w.tcpPort) throw new KvbridgeError("INVALID_ARGUMENT", "tcp offer without host or port");
      return { kind: "tcp", host: w.tcpHost, port: w.tcpPort };
    case "ucx":
      if (w.ucxWorkerAddress.length === 0 || w.ucxRkey.length === 0) {
        throw new KvbridgeError("INVALID_ARGUMENT", "ucx offer without worker address or rkey");
      }
      return { kind: "ucx", workerAddress: w.ucxWorkerAddress, rkey: w.ucxRkey, baseAddress: BigInt(w.ucxBaseAddress) };
    default:
      throw new KvbridgeError("INVALID_ARGUMENT", `unknown transport "${w.transport}" in offer`);
  }
}
