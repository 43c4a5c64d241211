// Original file: proto/kvbridge/v1/receiver.proto


export interface ChunkProof {
  'key'?: (string);
  'crc32'?: (number);
}

export interface ChunkProof__Output {
  'key': (string);
  'crc32': (number);
}
