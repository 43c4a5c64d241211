// Original file: proto/kvbridge/v1/receiver.proto

import type { ChunkProof as _kvbridge_v1_ChunkProof, ChunkProof__Output as _kvbridge_v1_ChunkProof__Output } from '../../kvbridge/v1/ChunkProof.js';

export interface CommitRequest {
  'requestId'?: (string);
  'proofs'?: (_kvbridge_v1_ChunkProof)[];
}

export interface CommitRequest__Output {
  'requestId': (string);
  'proofs': (_kvbridge_v1_ChunkProof__Output)[];
}
