// Original file: proto/kvbridge/v1/engine.proto

import type { Long } from '@grpc/proto-loader';

export interface PrefillResponse {
  'promptTokens'?: (number);
  'chunks'?: (number);
  'chunksDeduped'?: (number);
  'bytesSent'?: (number | string | Long);
  'transport'?: (string);
  'evalMs'?: (number | string);
  'transferMs'?: (number | string);
  'modelId'?: (string);
  'fingerprint'?: (string);
}

export interface PrefillResponse__Output {
  'promptTokens': (number);
  'chunks': (number);
  'chunksDeduped': (number);
  'bytesSent': (number);
  'transport': (string);
  'evalMs': (number);
  'transferMs': (number);
  'modelId': (string);
  'fingerprint': (string);
}
