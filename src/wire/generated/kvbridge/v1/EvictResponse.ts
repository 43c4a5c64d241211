// Original file: proto/kvbridge/v1/admin.proto


export interface EvictResponse {
  'evicted'?: (number);
  'slotsFree'?: (number);
}

export interface EvictResponse__Output {
  'evicted': (number);
  'slotsFree': (number);
}
