// Original file: proto/kvbridge/v1/receiver.proto

import type { Long } from '@grpc/proto-loader';

export interface AllocRequest {
  'requestId'?: (string);
  'keys'?: (string)[];
  'sizes'?: (number | string | Long)[];
  'batchSeq'?: (number);
  'totalChunks'?: (number);
  'isLastBatch'?: (boolean);
  'fingerprint'?: (string);
  'generation'?: (number | string | Long);
  'repairRound'?: (number);
}

export interface AllocRequest__Output {
  'requestId': (string);
  'keys': (string)[];
  'sizes': (number)[];
  'batchSeq': (number);
  'totalChunks': (number);
  'isLastBatch': (boolean);
  'fingerprint': (string);
  'generation': (number);
  'repairRound': (number);
}
