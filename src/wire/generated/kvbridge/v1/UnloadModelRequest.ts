// Original file: proto/kvbridge/v1/models.proto


export interface UnloadModelRequest {
  'model'?: (string);
}

export interface UnloadModelRequest__Output {
  'model': (string);
}
