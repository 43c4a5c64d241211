// Original file: proto/kvbridge/v1/admin.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AdminAbortRequest as _kvbridge_v1_AdminAbortRequest, AdminAbortRequest__Output as _kvbridge_v1_AdminAbortRequest__Output } from '../../kvbridge/v1/AdminAbortRequest.js';
import type { AdminAbortResponse as _kvbridge_v1_AdminAbortResponse, AdminAbortResponse__Output as _kvbridge_v1_AdminAbortResponse__Output } from '../../kvbridge/v1/AdminAbortResponse.js';
import type { EvictRequest as _kvbridge_v1_EvictRequest, EvictRequest__Output as _kvbridge_v1_EvictRequest__Output } from '../../kvbridge/v1/EvictRequest.js';
import type { EvictResponse as _kvbridge_v1_EvictResponse, EvictResponse__Output as _kvbridge_v1_EvictResponse__Output } from '../../kvbridge/v1/EvictResponse.js';

export interface AdminClient extends grpc.Client {
  AbortRequest(argument: _kvbridge_v1_AdminAbortRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AdminAbortResponse__Output>): grpc.ClientUnaryCall;
  AbortRequest(argument: _kvbridge_v1_AdminAbortRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_AdminAbortResponse__Output>): grpc.ClientUnaryCall;
  AbortRequest(argument: _kvbridge_v1_AdminAbortRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AdminAbortResponse__Output>): grpc.ClientUnaryCall;
  AbortRequest(argument: _kvbridge_v1_AdminAbortRequest, callback: grpc.requestCallback<_kvbridge_v1_AdminAbortResponse__Output>): grpc.ClientUnaryCall;
  abortRequest(argument: _kvbridge_v1_AdminAbortRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AdminAbortResponse__Output>): grpc.ClientUnaryCall;
  abortRequest(argument: _kvbridge_v1_AdminAbortRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_AdminAbortResponse__Output>): grpc.ClientUnaryCall;
  abortRequest(argument: _kvbridge_v1_AdminAbortRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AdminAbortResponse__Output>): grpc.ClientUnaryCall;
  abortRequest(argument: _kvbridge_v1_AdminAbortRequest, callback: grpc.requestCallback<_kvbridge_v1_AdminAbortResponse__Output>): grpc.ClientUnaryCall;
  
  Evict(argument: _kvbridge_v1_EvictRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_EvictResponse__Output>): grpc.ClientUnaryCall;
  Evict(argument: _kvbridge_v1_EvictRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_EvictResponse__Output>): grpc.ClientUnaryCall;
  Evict(argument: _kvbridge_v1_EvictRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_EvictResponse__Output>): grpc.ClientUnaryCall;
  Evict(argument: _kvbridge_v1_EvictRequest, callback: grpc.requestCallback<_kvbridge_v1_EvictResponse__Output>): grpc.ClientUnaryCall;
  evict(argument: _kvbridge_v1_EvictRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_EvictResponse__Output>): grpc.ClientUnaryCall;
  evict(argument: _kvbridge_v1_EvictRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_EvictResponse__Output>): grpc.ClientUnaryCall;
  evict(argument: _kvbridge_v1_EvictRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_EvictResponse__Output>): grpc.ClientUnaryCall;
  evict(argument: _kvbridge_v1_EvictRequest, callback: grpc.requestCallback<_kvbridge_v1_EvictResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface AdminHandlers extends grpc.UntypedServiceImplementation {
  AbortRequest: grpc.handleUnaryCall<_kvbridge_v1_AdminAbortRequest__Output, _kvbridge_v1_AdminAbortResponse>;
  
  Evict: grpc.handleUnaryCall<_kvbridge_v1_EvictRequest__Output, _kvbridge_v1_EvictResponse>;
  
}

export interface AdminDefinition extends grpc.ServiceDefinition {
  AbortRequest: MethodDefinition<_kvbridge_v1_AdminAbortRequest, _kvbridge_v1_AdminAbortResponse, _kvbridge_v1_AdminAbortRequest__Output, _kvbridge_v1_AdminAbortResponse__Output>
  Evict: MethodDefinition<_kvbridge_v1_EvictRequest, _kvbridge_v1_EvictResponse, _kvbridge_v1_EvictRequest__Output, _kvbridge_v1_EvictResponse__Output>
}
