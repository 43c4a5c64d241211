// Original file: proto/kvbridge/v1/receiver.proto

import type { DataPlaneOffer as _kvbridge_v1_DataPlaneOffer, DataPlaneOffer__Output as _kvbridge_v1_DataPlaneOffer__Output } from '../../kvbridge/v1/DataPlaneOffer.js';
import type { TransportNotOffered as _kvbridge_v1_TransportNotOffered, TransportNotOffered__Output as _kvbridge_v1_TransportNotOffered__Output } from '../../kvbridge/v1/TransportNotOffered.js';
import type { Long } from '@grpc/proto-loader';

export interface HelloResponse {
  'protocolVersion'?: (number);
  'fingerprint'?: (string);
  'nodeId'?: (string);
  'generation'?: (number | string | Long);
  'offers'?: (_kvbridge_v1_DataPlaneOffer)[];
  'slotBytes'?: (number | string | Long);
  'slotsTotal'?: (number);
  'leaseMs'?: (number);
  'maxKeysPerAlloc'?: (number);
  'capabilities'?: (string)[];
  'notOffered'?: (_kvbridge_v1_TransportNotOffered)[];
}

export interface HelloResponse__Output {
  'protocolVersion': (number);
  'fingerprint': (string);
  'nodeId': (string);
  'generation': (number);
  'offers': (_kvbridge_v1_DataPlaneOffer__Output)[];
  'slotBytes': (number);
  'slotsTotal': (number);
  'leaseMs': (number);
  'maxKeysPerAlloc': (number);
  'capabilities': (string)[];
  'notOffered': (_kvbridge_v1_TransportNotOffered__Output)[];
}
