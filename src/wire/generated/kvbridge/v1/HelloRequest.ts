// Original file: proto/kvbridge/v1/receiver.proto


export interface HelloRequest {
  'protocolVersion'?: (number);
  'fingerprint'?: (string);
  'transports'?: (string)[];
  'senderId'?: (string);
  'capabilities'?: (string)[];
}

export interface HelloRequest__Output {
  'protocolVersion': (number);
  'fingerprint': (string);
  'transports': (string)[];
  'senderId': (string);
  'capabilities': (string)[];
}
