// Original file: proto/kvbridge/v1/inspect.proto


export interface ListEntriesRequest {
  'state'?: (string);
  'pinnedOnly'?: (boolean);
  'prefix'?: (string);
  'limit'?: (number);
}

export interface ListEntriesRequest__Output {
  'state': (string);
  'pinnedOnly': (boolean);
  'prefix': (string);
  'limit': (number);
}
