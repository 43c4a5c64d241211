// Original file: proto/kvbridge/v1/receiver.proto


export interface ReleaseFailure {
  'requestId'?: (string);
  'code'?: (string);
  'message'?: (string);
}

export interface ReleaseFailure__Output {
  'requestId': (string);
  'code': (string);
  'message': (string);
}
