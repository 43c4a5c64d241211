// Original file: proto/kvbridge/v1/engine.proto


export interface CachedPrefixResponse {
  'chunks'?: (number);
}

export interface CachedPrefixResponse__Output {
  'chunks': (number);
}
