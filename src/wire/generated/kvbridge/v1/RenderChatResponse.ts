// Original file: proto/kvbridge/v1/engine.proto


export interface RenderChatResponse {
  'prompt'?: (string);
  'template'?: (string);
  'modelId'?: (string);
  'fingerprint'?: (string);
}

export interface RenderChatResponse__Output {
  'prompt': (string);
  'template': (string);
  'modelId': (string);
  'fingerprint': (string);
}
