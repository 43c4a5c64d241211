// Original file: proto/kvbridge/v1/inspect.proto

import type { Long } from '@grpc/proto-loader';

export interface KeyChecksum {
  'key'?: (string);
  'state'?: (string);
  'sha256'?: (string);
  'size'?: (number | string | Long);
}

export interface KeyChecksum__Output {
  'key': (string);
  'state': (string);
  'sha256': (string);
  'size': (number);
}
