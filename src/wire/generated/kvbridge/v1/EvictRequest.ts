// Original file: proto/kvbridge/v1/admin.proto


export interface EvictRequest {
  'key'?: (string);
  'allUnpinned'?: (boolean);
}

export interface EvictRequest__Output {
  'key': (string);
  'allUnpinned': (boolean);
}
