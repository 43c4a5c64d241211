// Original file: proto/kvbridge/v1/engine.proto

import type { TokenLogprob as _kvbridge_v1_TokenLogprob, TokenLogprob__Output as _kvbridge_v1_TokenLogprob__Output } from '../../kvbridge/v1/TokenLogprob.js';
import type { Long } from '@grpc/proto-loader';

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
  'logprobs'?: (_kvbridge_v1_TokenLogprob)[];
  'seed'?: (number | string | Long);
  '_seed'?: "seed";
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
  'logprobs': (_kvbridge_v1_TokenLogprob__Output)[];
  'seed'?: (number);
  '_seed'?: "seed";
}
