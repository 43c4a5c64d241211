// Original file: proto/kvbridge/v1/engine.proto


export interface PlanResponse {
  'promptTokens'?: (number);
  'keys'?: (string)[];
  'fingerprint'?: (string);
  'modelId'?: (string);
}

export interface PlanResponse__Output {
  'promptTokens': (number);
  'keys': (string)[];
  'fingerprint': (string);
  'modelId': (string);
}
