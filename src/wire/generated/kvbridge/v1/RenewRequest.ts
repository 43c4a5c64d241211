// Original file: proto/kvbridge/v1/receiver.proto


export interface RenewRequest {
  'requestId'?: (string);
}

export interface RenewRequest__Output {
  'requestId': (string);
}
