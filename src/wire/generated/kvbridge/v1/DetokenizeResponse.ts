// Original file: proto/kvbridge/v1/engine.proto


export interface DetokenizeResponse {
  'text'?: (string);
  'modelId'?: (string);
}

export interface DetokenizeResponse__Output {
  'text': (string);
  'modelId': (string);
}
