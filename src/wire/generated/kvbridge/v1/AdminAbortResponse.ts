// Original file: proto/kvbridge/v1/admin.proto


export interface AdminAbortResponse {
  'slotsReleased'?: (number);
  'pinsReleased'?: (number);
}

export interface AdminAbortResponse__Output {
  'slotsReleased': (number);
  'pinsReleased': (number);
}
