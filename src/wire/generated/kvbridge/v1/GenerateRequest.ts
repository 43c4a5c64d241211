// Original file: proto/kvbridge/v1/engine.proto

import type { Long } from '@grpc/proto-loader';

export interface GenerateRequest {
  'requestId'?: (string);
  'prompt'?: (string);
  'maxTokens'?: (number);
  'stop'?: (string)[];
  'kvWaitMs'?: (number);
  'model'?: (string);
  'temperature'?: (number | string);
  'topP'?: (number | string);
  'topK'?: (number);
  'minP'?: (number | string);
  'seed'?: (number | string | Long);
  'presencePenalty'?: (number | string);
  'frequencyPenalty'?: (number | string);
  'repetitionPenalty'?: (number | string);
  'logitBias'?: ({[key: number]: number | string});
  'logprobs'?: (boolean);
  'topLogprobs'?: (number);
  'responseFormat'?: (string);
  '_temperature'?: "temperature";
  '_topP'?: "topP";
  '_topK'?: "topK";
  '_minP'?: "minP";
  '_seed'?: "seed";
  '_presencePenalty'?: "presencePenalty";
  '_frequencyPenalty'?: "frequencyPenalty";
  '_repetitionPenalty'?: "repetitionPenalty";
}

export interface GenerateRequest__Output {
  'requestId': (string);
  'prompt': (string);
  'maxTokens': (number);
  'stop': (string)[];
  'kvWaitMs': (number);
  'model': (string);
  'temperature'?: (number);
  'topP'?: (number);
  'topK'?: (number);
  'minP'?: (number);
  'seed'?: (number);
  'presencePenalty'?: (number);
  'frequencyPenalty'?: (number);
  'repetitionPenalty'?: (number);
  'logitBias': ({[key: number]: number});
  'logprobs': (boolean);
  'topLogprobs': (number);
  'responseFormat': (string);
  '_temperature'?: "temperature";
  '_topP'?: "topP";
  '_topK'?: "topK";
  '_minP'?: "minP";
  '_seed'?: "seed";
  '_presencePenalty'?: "presencePenalty";
  '_frequencyPenalty'?: "frequencyPenalty";
  '_repetitionPenalty'?: "repetitionPenalty";
}
