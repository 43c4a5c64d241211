// Original file: proto/kvbridge/v1/receiver.proto


export interface TransportNotOffered {
  'transport'?: (string);
  'reason'?: (string);
  'message'?: (string);
}

export interface TransportNotOffered__Output {
  'transport': (string);
  'reason': (string);
  'message': (string);
}
