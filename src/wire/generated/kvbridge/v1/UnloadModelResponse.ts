// Original file: proto/kvbridge/v1/models.proto

import type { ModelInfo as _kvbridge_v1_ModelInfo, ModelInfo__Output as _kvbridge_v1_ModelInfo__Output } from '../../kvbridge/v1/ModelInfo.js';

export interface UnloadModelResponse {
  'model'?: (_kvbridge_v1_ModelInfo | null);
}

export interface UnloadModelResponse__Output {
  'model': (_kvbridge_v1_ModelInfo__Output | null);
}
