// Original file: proto/kvbridge/v1/receiver.proto


export interface ReleaseRequest {
  'requestId'?: (string);
}

export interface ReleaseRequest__Output {
  'requestId': (string);
}
