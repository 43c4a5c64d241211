// Original file: proto/kvbridge/v1/engine.proto

import type { TopLogprob as _kvbridge_v1_TopLogprob, TopLogprob__Output as _kvbridge_v1_TopLogprob__Output } from '../../kvbridge/v1/TopLogprob.js';

export interface TokenLogprob {
  'token'?: (number);
  'text'?: (string);
  'logprob'?: (number | string);
  'top'?: (_kvbridge_v1_TopLogprob)[];
}

export interface TokenLogprob__Output {
  'token': (number);
  'text': (string);
  'logprob': (number);
  'top': (_kvbridge_v1_TopLogprob__Output)[];
}
