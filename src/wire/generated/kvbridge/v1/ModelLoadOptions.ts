// Original file: proto/kvbridge/v1/models.proto


export interface ModelLoadOptions {
  'contextSize'?: (number);
  'threads'?: (number);
  'maxSequences'?: (number);
  'chunkTokens'?: (number);
}

export interface ModelLoadOptions__Output {
  'contextSize': (number);
  'threads': (number);
  'maxSequences': (number);
  'chunkTokens': (number);
}
