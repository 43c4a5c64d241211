// Original file: proto/kvbridge/v1/engine.proto


export interface TokenizeRequest {
  'model'?: (string);
  'prompt'?: (string);
  'addSpecial'?: (boolean);
}

export interface TokenizeRequest__Output {
  'model': (string);
  'prompt': (string);
  'addSpecial': (boolean);
}
