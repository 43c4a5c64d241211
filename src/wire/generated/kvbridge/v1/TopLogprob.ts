// Original file: proto/kvbridge/v1/engine.proto


export interface TopLogprob {
  'token'?: (number);
  'text'?: (string);
  'logprob'?: (number | string);
}

export interface TopLogprob__Output {
  'token': (number);
  'text': (string);
  'logprob': (number);
}
