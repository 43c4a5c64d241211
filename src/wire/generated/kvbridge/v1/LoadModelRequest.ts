// Original file: proto/kvbridge/v1/models.proto

import type { ModelLoadOptions as _kvbridge_v1_ModelLoadOptions, ModelLoadOptions__Output as _kvbridge_v1_ModelLoadOptions__Output } from '../../kvbridge/v1/ModelLoadOptions.js';

export interface LoadModelRequest {
  'model'?: (string);
  'options'?: (_kvbridge_v1_ModelLoadOptions | null);
}

export interface LoadModelRequest__Output {
  'model': (string);
  'options': (_kvbridge_v1_ModelLoadOptions__Output | null);
}
