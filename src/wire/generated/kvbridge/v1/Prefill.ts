// Original file: proto/kvbridge/v1/engine.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { PlanRequest as _kvbridge_v1_PlanRequest, PlanRequest__Output as _kvbridge_v1_PlanRequest__Output } from './PlanRequest.js';
import type { PlanResponse as _kvbridge_v1_PlanResponse, PlanResponse__Output as _kvbridge_v1_PlanResponse__Output } from './PlanResponse.js';
import type { PrefillRequest as _kvbridge_v1_PrefillRequest, PrefillRequest__Output as _kvbridge_v1_PrefillRequest__Output } from './PrefillRequest.js';
import type { PrefillResponse as _kvbridge_v1_PrefillResponse, PrefillResponse__Output as _kvbridge_v1_PrefillResponse__Output } from './PrefillResponse.js';

export interface PrefillClient extends grpc.Client {
  Plan(argument: _kvbridge_v1_PlanRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_PlanResponse__Output>): grpc.ClientUnaryCall;
  Plan(argument: _kvbridge_v1_PlanRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_PlanResponse__Output>): grpc.ClientUnaryCall;
  Plan(argument: _kvbridge_v1_PlanRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_PlanResponse__Output>): grpc.ClientUnaryCall;
  Plan(argument: _kvbridge_v1_PlanRequest, callback: grpc.requestCallback<_kvbridge_v1_PlanResponse__Output>): grpc.ClientUnaryCall;
  plan(argument: _kvbridge_v1_PlanRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_PlanResponse__Output>): grpc.ClientUnaryCall;
  plan(argument: _kvbridge_v1_PlanRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_PlanResponse__Output>): grpc.ClientUnaryCall;
  plan(argument: _kvbridge_v1_PlanRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_PlanResponse__Output>): grpc.ClientUnaryCall;
  plan(argument: _kvbridge_v1_PlanRequest, callback: grpc.requestCallback<_kvbridge_v1_PlanResponse__Output>): grpc.ClientUnaryCall;
  
  Prefill(argument: _kvbridge_v1_PrefillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_PrefillResponse__Output>): grpc.ClientUnaryCall;
  Prefill(argument: _kvbridge_v1_PrefillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_PrefillResponse__Output>): grpc.ClientUnaryCall;
  Prefill(argument: _kvbridge_v1_PrefillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_PrefillResponse__Output>): grpc.ClientUnaryCall;
  Prefill(argument: _kvbridge_v1_PrefillRequest, callback: grpc.requestCallback<_kvbridge_v1_PrefillResponse__Output>): grpc.ClientUnaryCall;
  prefill(argument: _kvbridge_v1_PrefillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_PrefillResponse__Output>): grpc.ClientUnaryCall;
  prefill(argument: _kvbridge_v1_PrefillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_PrefillResponse__Output>): grpc.ClientUnaryCall;
  prefill(argument: _kvbridge_v1_PrefillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_PrefillResponse__Output>): grpc.ClientUnaryCall;
  prefill(argument: _kvbridge_v1_PrefillRequest, callback: grpc.requestCallback<_kvbridge_v1_PrefillResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface PrefillHandlers extends grpc.UntypedServiceImplementation {
  Plan: grpc.handleUnaryCall<_kvbridge_v1_PlanRequest__Output, _kvbridge_v1_PlanResponse>;
  
  Prefill: grpc.handleUnaryCall<_kvbridge_v1_PrefillRequest__Output, _kvbridge_v1_PrefillResponse>;
  
}

export interface PrefillDefinition extends grpc.ServiceDefinition {
  Plan: MethodDefinition<_kvbridge_v1_PlanRequest, _kvbridge_v1_PlanResponse, _kvbridge_v1_PlanRequest__Output, _kvbridge_v1_PlanResponse__Output>
  Prefill: MethodDefinition<_kvbridge_v1_PrefillRequest, _kvbridge_v1_PrefillResponse, _kvbridge_v1_PrefillRequest__Output, _kvbridge_v1_PrefillResponse__Output>
}
