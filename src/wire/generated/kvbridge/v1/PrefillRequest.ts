// Original file: proto/kvbridge/v1/engine.proto


export interface PrefillRequest {
  'requestId'?: (string);
  'prompt'?: (string);
  'decodeTarget'?: (string);
  'model'?: (string);
}

export interface PrefillRequest__Output {
  'requestId': (string);
  'prompt': (string);
  'decodeTarget': (string);
  'model': (string);
}
