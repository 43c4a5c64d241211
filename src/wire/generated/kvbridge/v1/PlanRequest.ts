// Original file: proto/kvbridge/v1/engine.proto


export interface PlanRequest {
  'prompt'?: (string);
  'model'?: (string);
}

export interface PlanRequest__Output {
  'prompt': (string);
  'model': (string);
}
