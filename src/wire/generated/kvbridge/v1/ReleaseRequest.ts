// Original file: proto/kvbridge/v1/receiver.proto


export interface ReleaseRequest {
  'requestId'?: (string);
  'requestIds'?: (string)[];
}

export interface ReleaseRequest__Output {
  'requestId': (string);
  'requestIds': (string)[];
}
