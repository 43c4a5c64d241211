// Original file: proto/kvbridge/v1/engine.proto


export interface GenerateEvent {
  'text'?: (string);
  'token'?: (number);
  'done'?: (boolean);
  'finishReason'?: (string);
  'promptTokens'?: (number);
  'completionTokens'?: (number);
  'recomputedTokens'?: (number);
  'chunksLoaded'?: (number);
  'modelId'?: (string);
  'fingerprint'?: (string);
}

export interface GenerateEvent__Output {
  'text': (string);
  'token': (number);
  'done': (boolean);
  'finishReason': (string);
  'promptTokens': (number);
  'completionTokens': (number);
  'recomputedTokens': (number);
  'chunksLoaded': (number);
  'modelId': (string);
  'fingerprint': (string);
}
