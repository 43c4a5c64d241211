// Original file: proto/kvbridge/v1/engine.proto


export interface MatchPrefixResponse {
  'matched'?: (number);
}

export interface MatchPrefixResponse__Output {
  'matched': (number);
}
