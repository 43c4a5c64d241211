// Original file: proto/kvbridge/v1/receiver.proto


export interface CommitResponse {
  'keysReady'?: (number);
  'keysPending'?: (number);
  'keysFailed'?: (number);
}

export interface CommitResponse__Output {
  'keysReady': (number);
  'keysPending': (number);
  'keysFailed': (number);
}
