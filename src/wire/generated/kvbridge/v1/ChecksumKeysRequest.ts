// Original file: proto/kvbridge/v1/inspect.proto


export interface ChecksumKeysRequest {
  'keys'?: (string)[];
}

export interface ChecksumKeysRequest__Output {
  'keys': (string)[];
}
