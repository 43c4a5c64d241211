// Original file: proto/kvbridge/v1/receiver.proto


export interface AbortResponse {
  'slotsReleased'?: (number);
  'pinsReleased'?: (number);
}

export interface AbortResponse__Output {
  'slotsReleased': (number);
  'pinsReleased': (number);
}
