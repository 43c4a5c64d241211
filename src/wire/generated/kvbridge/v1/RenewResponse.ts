// Original file: proto/kvbridge/v1/receiver.proto

import type { Long } from '@grpc/proto-loader';

export interface RenewResponse {
  'leaseExpiresAtMs'?: (number | string | Long);
}

export interface RenewResponse__Output {
  'leaseExpiresAtMs': (number);
}
