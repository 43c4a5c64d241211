// Original file: proto/kvbridge/v1/engine.proto


export interface DetokenizeRequest {
  'model'?: (string);
  'tokens'?: (number)[];
}

export interface DetokenizeRequest__Output {
  'model': (string);
  'tokens': (number)[];
}
