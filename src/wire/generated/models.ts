import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { ListModelsRequest as _kvbridge_v1_ListModelsRequest, ListModelsRequest__Output as _kvbridge_v1_ListModelsRequest__Output } from './kvbridge/v1/ListModelsRequest.js';
import type { ListModelsResponse as _kvbridge_v1_ListModelsResponse, ListModelsResponse__Output as _kvbridge_v1_ListModelsResponse__Output } from './kvbridge/v1/ListModelsResponse.js';
import type { LoadModelRequest as _kvbridge_v1_LoadModelRequest, LoadModelRequest__Output as _kvbridge_v1_LoadModelRequest__Output } from './kvbridge/v1/LoadModelRequest.js';
import type { LoadModelResponse as _kvbridge_v1_LoadModelResponse, LoadModelResponse__Output as _kvbridge_v1_LoadModelResponse__Output } from './kvbridge/v1/LoadModelResponse.js';
import type { ModelFailure as _kvbridge_v1_ModelFailure, ModelFailure__Output as _kvbridge_v1_ModelFailure__Output } from './kvbridge/v1/ModelFailure.js';
import type { ModelInfo as _kvbridge_v1_ModelInfo, ModelInfo__Output as _kvbridge_v1_ModelInfo__Output } from './kvbridge/v1/ModelInfo.js';
import type { ModelLoadOptions as _kvbridge_v1_ModelLoadOptions, ModelLoadOptions__Output as _kvbridge_v1_ModelLoadOptions__Output } from './kvbridge/v1/ModelLoadOptions.js';
import type { ModelsClient as _kvbridge_v1_ModelsClient, ModelsDefinition as _kvbridge_v1_ModelsDefinition } from './kvbridge/v1/Models.js';
import type { UnloadModelRequest as _kvbridge_v1_UnloadModelRequest, UnloadModelRequest__Output as _kvbridge_v1_UnloadModelRequest__Output } from './kvbridge/v1/UnloadModelRequest.js';
import type { UnloadModelResponse as _kvbridge_v1_UnloadModelResponse, UnloadModelResponse__Output as _kvbridge_v1_UnloadModelResponse__Output } from './kvbridge/v1/UnloadModelResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  kvbridge: {
    v1: {
      ListModelsRequest: MessageTypeDefinition<_kvbridge_v1_ListModelsRequest, _kvbridge_v1_ListModelsRequest__Output>
      ListModelsResponse: MessageTypeDefinition<_kvbridge_v1_ListModelsResponse, _kvbridge_v1_ListModelsResponse__Output>
      LoadModelRequest: MessageTypeDefinition<_kvbridge_v1_LoadModelRequest, _kvbridge_v1_LoadModelRequest__Output>
      LoadModelResponse: MessageTypeDefinition<_kvbridge_v1_LoadModelResponse, _kvbridge_v1_LoadModelResponse__Output>
      ModelFailure: MessageTypeDefinition<_kvbridge_v1_ModelFailure, _kvbridge_v1_ModelFailure__Output>
      ModelInfo: MessageTypeDefinition<_kvbridge_v1_ModelInfo, _kvbridge_v1_ModelInfo__Output>
      ModelLoadOptions: MessageTypeDefinition<_kvbridge_v1_ModelLoadOptions, _kvbridge_v1_ModelLoadOptions__Output>
      Models: SubtypeConstructor<typeof grpc.Client, _kvbridge_v1_ModelsClient> & { service: _kvbridge_v1_ModelsDefinition }
      UnloadModelRequest: MessageTypeDefinition<_kvbridge_v1_UnloadModelRequest, _kvbridge_v1_UnloadModelRequest__Output>
      UnloadModelResponse: MessageTypeDefinition<_kvbridge_v1_UnloadModelResponse, _kvbridge_v1_UnloadModelResponse__Output>
    }
  }
}

