// Original file: proto/kvbridge/v1/models.proto

import type { ModelInfo as _kvbridge_v1_ModelInfo, ModelInfo__Output as _kvbridge_v1_ModelInfo__Output } from '../../kvbridge/v1/ModelInfo.js';

export interface ListModelsResponse {
  'models'?: (_kvbridge_v1_ModelInfo)[];
  'defaultModel'?: (string);
  'nodeId'?: (string);
  'role'?: (string);
  'modelsMax'?: (number);
}

export interface ListModelsResponse__Output {
  'models': (_kvbridge_v1_ModelInfo__Output)[];
  'defaultModel': (string);
  'nodeId': (string);
  'role': (string);
  'modelsMax': (number);
}
