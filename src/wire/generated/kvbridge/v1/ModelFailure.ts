// Original file: proto/kvbridge/v1/models.proto


export interface ModelFailure {
  'code'?: (string);
  'message'?: (string);
}

export interface ModelFailure__Output {
  'code': (string);
  'message': (string);
}
