// Original file: proto/kvbridge/v1/engine.proto


export interface TokenizeResponse {
  'tokens'?: (number)[];
  'modelId'?: (string);
}

export interface TokenizeResponse__Output {
  'tokens': (number)[];
  'modelId': (string);
}
