// Original file: proto/kvbridge/v1/admin.proto


export interface AdminAbortRequest {
  'requestId'?: (string);
  'reason'?: (string);
}

export interface AdminAbortRequest__Output {
  'requestId': (string);
  'reason': (string);
}
