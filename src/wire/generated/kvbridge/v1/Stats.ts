// Original file: proto/kvbridge/v1/inspect.proto

import type { ModelStats as _kvbridge_v1_ModelStats, ModelStats__Output as _kvbridge_v1_ModelStats__Output } from '../../kvbridge/v1/ModelStats.js';
import type { TransportNotOffered as _kvbridge_v1_TransportNotOffered, TransportNotOffered__Output as _kvbridge_v1_TransportNotOffered__Output } from '../../kvbridge/v1/TransportNotOffered.js';
import type { Long } from '@grpc/proto-loader';

export interface Stats {
  'nodeId'?: (string);
  'role'?: (string);
  'version'?: (string);
  'protocolVersion'?: (number);
  'generation'?: (number | string | Long);
  'transports'?: (string)[];
  'slotBytes'?: (number | string | Long);
  'slotsTotal'?: (number);
  'slotsFree'?: (number);
  'slotsWriting'?: (number);
  'slotsReady'?: (number);
  'slotsQuarantined'?: (number);
  'slotsReserved'?: (number);
  'entries'?: (number);
  'activeRequests'?: (number);
  'dedupHits'?: (number | string | Long);
  'dedupMisses'?: (number | string | Long);
  'bytesReceived'?: (number | string | Long);
  'leasesExpired'?: (number | string | Long);
  'requestsCommitted'?: (number | string | Long);
  'requestsAborted'?: (number | string | Long);
  'evictions'?: (number | string | Long);
  'fingerprint'?: (string);
  'serving'?: (boolean);
  'activeGenerations'?: (number);
  'models'?: (_kvbridge_v1_ModelStats)[];
  'pushesInFlight'?: (number);
  'transportsNotOffered'?: (_kvbridge_v1_TransportNotOffered)[];
  'capabilities'?: (string)[];
}

export interface Stats__Output {
  'nodeId': (string);
  'role': (string);
  'version': (string);
  'protocolVersion': (number);
  'generation': (number);
  'transports': (string)[];
  'slotBytes': (number);
  'slotsTotal': (number);
  'slotsFree': (number);
  'slotsWriting': (number);
  'slotsReady': (number);
  'slotsQuarantined': (number);
  'slotsReserved': (number);
  'entries': (number);
  'activeRequests': (number);
  'dedupHits': (number);
  'dedupMisses': (number);
  'bytesReceived': (number);
  'leasesExpired': (number);
  'requestsCommitted': (number);
  'requestsAborted': (number);
  'evictions': (number);
  'fingerprint': (string);
  'serving': (boolean);
  'activeGenerations': (number);
  'models': (_kvbridge_v1_ModelStats__Output)[];
  'pushesInFlight': (number);
  'transportsNotOffered': (_kvbridge_v1_TransportNotOffered__Output)[];
  'capabilities': (string)[];
}
