// Original file: proto/kvbridge/v1/inspect.proto

import type { Long } from '@grpc/proto-loader';

export interface RequestInfo {
  'requestId'?: (string);
  'phase'?: (string);
  'keysWritten'?: (number);
  'keysDeduped'?: (number);
  'keysPending'?: (number);
  'bytes'?: (number | string | Long);
  'ageMs'?: (number | string | Long);
  'leaseLeftMs'?: (number | string | Long);
  'peer'?: (string);
  'kind'?: (string);
  'model'?: (string);
  'promptTokens'?: (number);
  'tokensGenerated'?: (number);
  'chunks'?: (number);
}

export interface RequestInfo__Output {
  'requestId': (string);
  'phase': (string);
  'keysWritten': (number);
  'keysDeduped': (number);
  'keysPending': (number);
  'bytes': (number);
  'ageMs': (number);
  'leaseLeftMs': (number);
  'peer': (string);
  'kind': (string);
  'model': (string);
  'promptTokens': (number);
  'tokensGenerated': (number);
  'chunks': (number);
}
