// Original file: proto/kvbridge/v1/receiver.proto


export interface AbortRequest {
  'requestId'?: (string);
  'reason'?: (string);
}

export interface AbortRequest__Output {
  'requestId': (string);
  'reason': (string);
}
