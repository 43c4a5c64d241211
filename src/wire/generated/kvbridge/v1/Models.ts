// Original file: proto/kvbridge/v1/models.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ListModelsRequest as _kvbridge_v1_ListModelsRequest, ListModelsRequest__Output as _kvbridge_v1_ListModelsRequest__Output } from '../../kvbridge/v1/ListModelsRequest.js';
import type { ListModelsResponse as _kvbridge_v1_ListModelsResponse, ListModelsResponse__Output as _kvbridge_v1_ListModelsResponse__Output } from '../../kvbridge/v1/ListModelsResponse.js';
import type { LoadModelRequest as _kvbridge_v1_LoadModelRequest, LoadModelRequest__Output as _kvbridge_v1_LoadModelRequest__Output } from '../../kvbridge/v1/LoadModelRequest.js';
import type { LoadModelResponse as _kvbridge_v1_LoadModelResponse, LoadModelResponse__Output as _kvbridge_v1_LoadModelResponse__Output } from '../../kvbridge/v1/LoadModelResponse.js';
import type { UnloadModelRequest as _kvbridge_v1_UnloadModelRequest, UnloadModelRequest__Output as _kvbridge_v1_UnloadModelRequest__Output } from '../../kvbridge/v1/UnloadModelRequest.js';
import type { UnloadModelResponse as _kvbridge_v1_UnloadModelResponse, UnloadModelResponse__Output as _kvbridge_v1_UnloadModelResponse__Output } from '../../kvbridge/v1/UnloadModelResponse.js';

export interface ModelsClient extends grpc.Client {
  ListModels(argument: _kvbridge_v1_ListModelsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  ListModels(argument: _kvbridge_v1_ListModelsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  ListModels(argument: _kvbridge_v1_ListModelsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  ListModels(argument: _kvbridge_v1_ListModelsRequest, callback: grpc.requestCallback<_kvbridge_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  listModels(argument: _kvbridge_v1_ListModelsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  listModels(argument: _kvbridge_v1_ListModelsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  listModels(argument: _kvbridge_v1_ListModelsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  listModels(argument: _kvbridge_v1_ListModelsRequest, callback: grpc.requestCallback<_kvbridge_v1_ListModelsResponse__Output>): grpc.ClientUnaryCall;
  
  LoadModel(argument: _kvbridge_v1_LoadModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_LoadModelResponse__Output>): grpc.ClientUnaryCall;
  LoadModel(argument: _kvbridge_v1_LoadModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_LoadModelResponse__Output>): grpc.ClientUnaryCall;
  LoadModel(argument: _kvbridge_v1_LoadModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_LoadModelResponse__Output>): grpc.ClientUnaryCall;
  LoadModel(argument: _kvbridge_v1_LoadModelRequest, callback: grpc.requestCallback<_kvbridge_v1_LoadModelResponse__Output>): grpc.ClientUnaryCall;
  loadModel(argument: _kvbridge_v1_LoadModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_LoadModelResponse__Output>): grpc.ClientUnaryCall;
  loadModel(argument: _kvbridge_v1_LoadModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_LoadModelResponse__Output>): grpc.ClientUnaryCall;
  loadModel(argument: _kvbridge_v1_LoadModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_LoadModelResponse__Output>): grpc.ClientUnaryCall;
  loadModel(argument: _kvbridge_v1_LoadModelRequest, callback: grpc.requestCallback<_kvbridge_v1_LoadModelResponse__Output>): grpc.ClientUnaryCall;
  
  UnloadModel(argument: _kvbridge_v1_UnloadModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_UnloadModelResponse__Output>): grpc.ClientUnaryCall;
  UnloadModel(argument: _kvbridge_v1_UnloadModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_UnloadModelResponse__Output>): grpc.ClientUnaryCall;
  UnloadModel(argument: _kvbridge_v1_UnloadModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_UnloadModelResponse__Output>): grpc.ClientUnaryCall;
  UnloadModel(argument: _kvbridge_v1_UnloadModelRequest, callback: grpc.requestCallback<_kvbridge_v1_UnloadModelResponse__Output>): grpc.ClientUnaryCall;
  unloadModel(argument: _kvbridge_v1_UnloadModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_UnloadModelResponse__Output>): grpc.ClientUnaryCall;
  unloadModel(argument: _kvbridge_v1_UnloadModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_UnloadModelResponse__Output>): grpc.ClientUnaryCall;
  unloadModel(argument: _kvbridge_v1_UnloadModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_UnloadModelResponse__Output>): grpc.ClientUnaryCall;
  unloadModel(argument: _kvbridge_v1_UnloadModelRequest, callback: grpc.requestCallback<_kvbridge_v1_UnloadModelResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface ModelsHandlers extends grpc.UntypedServiceImplementation {
  ListModels: grpc.handleUnaryCall<_kvbridge_v1_ListModelsRequest__Output, _kvbridge_v1_ListModelsResponse>;
  
  LoadModel: grpc.handleUnaryCall<_kvbridge_v1_LoadModelRequest__Output, _kvbridge_v1_LoadModelResponse>;
  
  UnloadModel: grpc.handleUnaryCall<_kvbridge_v1_UnloadModelRequest__Output, _kvbridge_v1_UnloadModelResponse>;
  
}

export interface ModelsDefinition extends grpc.ServiceDefinition {
  ListModels: MethodDefinition<_kvbridge_v1_ListModelsRequest, _kvbridge_v1_ListModelsResponse, _kvbridge_v1_ListModelsRequest__Output, _kvbridge_v1_ListModelsResponse__Output>
  LoadModel: MethodDefinition<_kvbridge_v1_LoadModelRequest, _kvbridge_v1_LoadModelResponse, _kvbridge_v1_LoadModelRequest__Output, _kvbridge_v1_LoadModelResponse__Output>
  UnloadModel: MethodDefinition<_kvbridge_v1_UnloadModelRequest, _kvbridge_v1_UnloadModelResponse, _kvbridge_v1_UnloadModelRequest__Output, _kvbridge_v1_UnloadModelResponse__Output>
}
