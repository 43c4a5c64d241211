// Original file: proto/kvbridge/v1/receiver.proto

import type { Long } from '@grpc/proto-loader';

export interface AllocResponse {
  'remoteIndexes'?: (number | string | Long)[];
  'alreadySentIndexes'?: (number)[];
  'writeTokens'?: (Buffer | Uint8Array | string)[];
  'slotBytes'?: (number | string | Long);
  'leaseExpiresAtMs'?: (number | string | Long);
}

export interface AllocResponse__Output {
  'remoteIndexes': (number)[];
  'alreadySentIndexes': (number)[];
  'writeTokens': (Buffer)[];
  'slotBytes': (number);
  'leaseExpiresAtMs': (number);
}
