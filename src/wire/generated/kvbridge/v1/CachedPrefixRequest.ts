// Original file: proto/kvbridge/v1/engine.proto


export interface CachedPrefixRequest {
  'model'?: (string);
  'keys'?: (string)[];
}

export interface CachedPrefixRequest__Output {
  'model': (string);
  'keys': (string)[];
}
