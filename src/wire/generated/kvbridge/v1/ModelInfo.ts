// Original file: proto/kvbridge/v1/models.proto

import type { ModelLoadOptions as _kvbridge_v1_ModelLoadOptions, ModelLoadOptions__Output as _kvbridge_v1_ModelLoadOptions__Output } from '../../kvbridge/v1/ModelLoadOptions.js';
import type { ModelFailure as _kvbridge_v1_ModelFailure, ModelFailure__Output as _kvbridge_v1_ModelFailure__Output } from '../../kvbridge/v1/ModelFailure.js';

export interface ModelInfo {
  'id'?: (string);
  'aliases'?: (string)[];
  'state'?: (string);
  'fingerprint'?: (string);
  'options'?: (_kvbridge_v1_ModelLoadOptions | null);
  'requestsInFlight'?: (number);
  'lastUsedMs'?: (number | string);
  'failure'?: (_kvbridge_v1_ModelFailure | null);
  'loads'?: (number);
  'isDefault'?: (boolean);
  'path'?: (string);
  'contextSize'?: (number);
}

export interface ModelInfo__Output {
  'id': (string);
  'aliases': (string)[];
  'state': (string);
  'fingerprint': (string);
  'options': (_kvbridge_v1_ModelLoadOptions__Output | null);
  'requestsInFlight': (number);
  'lastUsedMs': (number);
  'failure': (_kvbridge_v1_ModelFailure__Output | null);
  'loads': (number);
  'isDefault': (boolean);
  'path': (string);
  'contextSize': (number);
}
