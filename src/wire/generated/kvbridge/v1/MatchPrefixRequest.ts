// Original file: proto/kvbridge/v1/engine.proto


export interface MatchPrefixRequest {
  'keys'?: (string)[];
  'model'?: (string);
}

export interface MatchPrefixRequest__Output {
  'keys': (string)[];
  'model': (string);
}
