// Original file: proto/kvbridge/v1/receiver.proto


export interface AwaitReadyRequest {
  'requestId'?: (string);
  'timeoutMs'?: (number);
}

export interface AwaitReadyRequest__Output {
  'requestId': (string);
  'timeoutMs': (number);
}
