// Original file: proto/kvbridge/v1/receiver.proto


export interface ReleaseResponse {
  'pinsReleased'?: (number);
}

export interface ReleaseResponse__Output {
  'pinsReleased': (number);
}
