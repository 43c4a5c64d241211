// The UCX data plane: what the rest of kvbridge imports from transport/ucx.
export { ucxAvailability, type UcxAvailability } from "./ucx-availability.js";
export { UcxReceiverDataPlane, type UcxReceiverOptions } from "./ucx-receiver.js";
export { UcxSenderTransport, UCX_SENDER_DEFAULTS, type UcxSenderOptions } from "./ucx-sender.js";
export type { UcxSenderChannel, UcxChannelStats, UcxErrorHandling } from "./ucx-channel.js";
export { receiverDirectness, endpointDirectness, UcxNotDirectError, type UcxDirectness } from "./ucx-directness.js";
