// Original file: proto/kvbridge/v1/engine.proto


export interface GenerateRequest {
  'requestId'?: (string);
  'prompt'?: (string);
  'maxTokens'?: (number);
  'stop'?: (string)[];
  'kvWaitMs'?: (number);
  'model'?: (string);
}

export interface GenerateRequest__Output {
  'requestId': (string);
  'prompt': (string);
  'maxTokens': (number);
  'stop': (string)[];
  'kvWaitMs': (number);
  'model': (string);
}
