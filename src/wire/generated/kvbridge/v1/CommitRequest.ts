// Original file: proto/kvbridge/v1/receiver.proto


export interface CommitRequest {
  'requestId'?: (string);
}

export interface CommitRequest__Output {
  'requestId': (string);
}
