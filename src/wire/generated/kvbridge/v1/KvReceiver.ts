// Original file: proto/kvbridge/v1/receiver.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AbortRequest as _kvbridge_v1_AbortRequest, AbortRequest__Output as _kvbridge_v1_AbortRequest__Output } from '../../kvbridge/v1/AbortRequest.js';
import type { AbortResponse as _kvbridge_v1_AbortResponse, AbortResponse__Output as _kvbridge_v1_AbortResponse__Output } from '../../kvbridge/v1/AbortResponse.js';
import type { AllocRequest as _kvbridge_v1_AllocRequest, AllocRequest__Output as _kvbridge_v1_AllocRequest__Output } from '../../kvbridge/v1/AllocRequest.js';
import type { AllocResponse as _kvbridge_v1_AllocResponse, AllocResponse__Output as _kvbridge_v1_AllocResponse__Output } from '../../kvbridge/v1/AllocResponse.js';
import type { AwaitReadyRequest as _kvbridge_v1_AwaitReadyRequest, AwaitReadyRequest__Output as _kvbridge_v1_AwaitReadyRequest__Output } from '../../kvbridge/v1/AwaitReadyRequest.js';
import type { AwaitReadyResponse as _kvbridge_v1_AwaitReadyResponse, AwaitReadyResponse__Output as _kvbridge_v1_AwaitReadyResponse__Output } from '../../kvbridge/v1/AwaitReadyResponse.js';
import type { CommitRequest as _kvbridge_v1_CommitRequest, CommitRequest__Output as _kvbridge_v1_CommitRequest__Output } from '../../kvbridge/v1/CommitRequest.js';
import type { CommitResponse as _kvbridge_v1_CommitResponse, CommitResponse__Output as _kvbridge_v1_CommitResponse__Output } from '../../kvbridge/v1/CommitResponse.js';
import type { HelloRequest as _kvbridge_v1_HelloRequest, HelloRequest__Output as _kvbridge_v1_HelloRequest__Output } from '../../kvbridge/v1/HelloRequest.js';
import type { HelloResponse as _kvbridge_v1_HelloResponse, HelloResponse__Output as _kvbridge_v1_HelloResponse__Output } from '../../kvbridge/v1/HelloResponse.js';
import type { ReleaseRequest as _kvbridge_v1_ReleaseRequest, ReleaseRequest__Output as _kvbridge_v1_ReleaseRequest__Output } from '../../kvbridge/v1/ReleaseRequest.js';
import type { ReleaseResponse as _kvbridge_v1_ReleaseResponse, ReleaseResponse__Output as _kvbridge_v1_ReleaseResponse__Output } from '../../kvbridge/v1/ReleaseResponse.js';
import type { RenewRequest as _kvbridge_v1_RenewRequest, RenewRequest__Output as _kvbridge_v1_RenewRequest__Output } from '../../kvbridge/v1/RenewRequest.js';
import type { RenewResponse as _kvbridge_v1_RenewResponse, RenewResponse__Output as _kvbridge_v1_RenewResponse__Output } from '../../kvbridge/v1/RenewResponse.js';

export interface KvReceiverClient extends grpc.Client {
  Abort(argument: _kvbridge_v1_AbortRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AbortResponse__Output>): grpc.ClientUnaryCall;
  Abort(argument: _kvbridge_v1_AbortRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_AbortResponse__Output>): grpc.ClientUnaryCall;
  Abort(argument: _kvbridge_v1_AbortRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AbortResponse__Output>): grpc.ClientUnaryCall;
  Abort(argument: _kvbridge_v1_AbortRequest, callback: grpc.requestCallback<_kvbridge_v1_AbortResponse__Output>): grpc.ClientUnaryCall;
  abort(argument: _kvbridge_v1_AbortRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AbortResponse__Output>): grpc.ClientUnaryCall;
  abort(argument: _kvbridge_v1_AbortRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_AbortResponse__Output>): grpc.ClientUnaryCall;
  abort(argument: _kvbridge_v1_AbortRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AbortResponse__Output>): grpc.ClientUnaryCall;
  abort(argument: _kvbridge_v1_AbortRequest, callback: grpc.requestCallback<_kvbridge_v1_AbortResponse__Output>): grpc.ClientUnaryCall;
  
  Alloc(argument: _kvbridge_v1_AllocRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AllocResponse__Output>): grpc.ClientUnaryCall;
  Alloc(argument: _kvbridge_v1_AllocRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_AllocResponse__Output>): grpc.ClientUnaryCall;
  Alloc(argument: _kvbridge_v1_AllocRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AllocResponse__Output>): grpc.ClientUnaryCall;
  Alloc(argument: _kvbridge_v1_AllocRequest, callback: grpc.requestCallback<_kvbridge_v1_AllocResponse__Output>): grpc.ClientUnaryCall;
  alloc(argument: _kvbridge_v1_AllocRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AllocResponse__Output>): grpc.ClientUnaryCall;
  alloc(argument: _kvbridge_v1_AllocRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_AllocResponse__Output>): grpc.ClientUnaryCall;
  alloc(argument: _kvbridge_v1_AllocRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AllocResponse__Output>): grpc.ClientUnaryCall;
  alloc(argument: _kvbridge_v1_AllocRequest, callback: grpc.requestCallback<_kvbridge_v1_AllocResponse__Output>): grpc.ClientUnaryCall;
  
  AwaitReady(argument: _kvbridge_v1_AwaitReadyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AwaitReadyResponse__Output>): grpc.ClientUnaryCall;
  AwaitReady(argument: _kvbridge_v1_AwaitReadyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_AwaitReadyResponse__Output>): grpc.ClientUnaryCall;
  AwaitReady(argument: _kvbridge_v1_AwaitReadyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AwaitReadyResponse__Output>): grpc.ClientUnaryCall;
  AwaitReady(argument: _kvbridge_v1_AwaitReadyRequest, callback: grpc.requestCallback<_kvbridge_v1_AwaitReadyResponse__Output>): grpc.ClientUnaryCall;
  awaitReady(argument: _kvbridge_v1_AwaitReadyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AwaitReadyResponse__Output>): grpc.ClientUnaryCall;
  awaitReady(argument: _kvbridge_v1_AwaitReadyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_AwaitReadyResponse__Output>): grpc.ClientUnaryCall;
  awaitReady(argument: _kvbridge_v1_AwaitReadyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_AwaitReadyResponse__Output>): grpc.ClientUnaryCall;
  awaitReady(argument: _kvbridge_v1_AwaitReadyRequest, callback: grpc.requestCallback<_kvbridge_v1_AwaitReadyResponse__Output>): grpc.ClientUnaryCall;
  
  Commit(argument: _kvbridge_v1_CommitRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_CommitResponse__Output>): grpc.ClientUnaryCall;
  Commit(argument: _kvbridge_v1_CommitRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_CommitResponse__Output>): grpc.ClientUnaryCall;
  Commit(argument: _kvbridge_v1_CommitRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_CommitResponse__Output>): grpc.ClientUnaryCall;
  Commit(argument: _kvbridge_v1_CommitRequest, callback: grpc.requestCallback<_kvbridge_v1_CommitResponse__Output>): grpc.ClientUnaryCall;
  commit(argument: _kvbridge_v1_CommitRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_CommitResponse__Output>): grpc.ClientUnaryCall;
  commit(argument: _kvbridge_v1_CommitRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_CommitResponse__Output>): grpc.ClientUnaryCall;
  commit(argument: _kvbridge_v1_CommitRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_CommitResponse__Output>): grpc.ClientUnaryCall;
  commit(argument: _kvbridge_v1_CommitRequest, callback: grpc.requestCallback<_kvbridge_v1_CommitResponse__Output>): grpc.ClientUnaryCall;
  
  Hello(argument: _kvbridge_v1_HelloRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_HelloResponse__Output>): grpc.ClientUnaryCall;
  Hello(argument: _kvbridge_v1_HelloRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_HelloResponse__Output>): grpc.ClientUnaryCall;
  Hello(argument: _kvbridge_v1_HelloRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_HelloResponse__Output>): grpc.ClientUnaryCall;
  Hello(argument: _kvbridge_v1_HelloRequest, callback: grpc.requestCallback<_kvbridge_v1_HelloResponse__Output>): grpc.ClientUnaryCall;
  hello(argument: _kvbridge_v1_HelloRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_HelloResponse__Output>): grpc.ClientUnaryCall;
  hello(argument: _kvbridge_v1_HelloRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_HelloResponse__Output>): grpc.ClientUnaryCall;
  hello(argument: _kvbridge_v1_HelloRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_HelloResponse__Output>): grpc.ClientUnaryCall;
  hello(argument: _kvbridge_v1_HelloRequest, callback: grpc.requestCallback<_kvbridge_v1_HelloResponse__Output>): grpc.ClientUnaryCall;
  
  Release(argument: _kvbridge_v1_ReleaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ReleaseResponse__Output>): grpc.ClientUnaryCall;
  Release(argument: _kvbridge_v1_ReleaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ReleaseResponse__Output>): grpc.ClientUnaryCall;
  Release(argument: _kvbridge_v1_ReleaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ReleaseResponse__Output>): grpc.ClientUnaryCall;
  Release(argument: _kvbridge_v1_ReleaseRequest, callback: grpc.requestCallback<_kvbridge_v1_ReleaseResponse__Output>): grpc.ClientUnaryCall;
  release(argument: _kvbridge_v1_ReleaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ReleaseResponse__Output>): grpc.ClientUnaryCall;
  release(argument: _kvbridge_v1_ReleaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ReleaseResponse__Output>): grpc.ClientUnaryCall;
  release(argument: _kvbridge_v1_ReleaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ReleaseResponse__Output>): grpc.ClientUnaryCall;
  release(argument: _kvbridge_v1_ReleaseRequest, callback: grpc.requestCallback<_kvbridge_v1_ReleaseResponse__Output>): grpc.ClientUnaryCall;
  
  Renew(argument: _kvbridge_v1_RenewRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_RenewResponse__Output>): grpc.ClientUnaryCall;
  Renew(argument: _kvbridge_v1_RenewRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_RenewResponse__Output>): grpc.ClientUnaryCall;
  Renew(argument: _kvbridge_v1_RenewRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_RenewResponse__Output>): grpc.ClientUnaryCall;
  Renew(argument: _kvbridge_v1_RenewRequest, callback: grpc.requestCallback<_kvbridge_v1_RenewResponse__Output>): grpc.ClientUnaryCall;
  renew(argument: _kvbridge_v1_RenewRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_RenewResponse__Output>): grpc.ClientUnaryCall;
  renew(argument: _kvbridge_v1_RenewRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_RenewResponse__Output>): grpc.ClientUnaryCall;
  renew(argument: _kvbridge_v1_RenewRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_RenewResponse__Output>): grpc.ClientUnaryCall;
  renew(argument: _kvbridge_v1_RenewRequest, callback: grpc.requestCallback<_kvbridge_v1_RenewResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface KvReceiverHandlers extends grpc.UntypedServiceImplementation {
  Abort: grpc.handleUnaryCall<_kvbridge_v1_AbortRequest__Output, _kvbridge_v1_AbortResponse>;
  
  Alloc: grpc.handleUnaryCall<_kvbridge_v1_AllocRequest__Output, _kvbridge_v1_AllocResponse>;
  
  AwaitReady: grpc.handleUnaryCall<_kvbridge_v1_AwaitReadyRequest__Output, _kvbridge_v1_AwaitReadyResponse>;
  
  Commit: grpc.handleUnaryCall<_kvbridge_v1_CommitRequest__Output, _kvbridge_v1_CommitResponse>;
  
  Hello: grpc.handleUnaryCall<_kvbridge_v1_HelloRequest__Output, _kvbridge_v1_HelloResponse>;
  
  Release: grpc.handleUnaryCall<_kvbridge_v1_ReleaseRequest__Output, _kvbridge_v1_ReleaseResponse>;
  
  Renew: grpc.handleUnaryCall<_kvbridge_v1_RenewRequest__Output, _kvbridge_v1_RenewResponse>;
  
}

export interface KvReceiverDefinition extends grpc.ServiceDefinition {
  Abort: MethodDefinition<_kvbridge_v1_AbortRequest, _kvbridge_v1_AbortResponse, _kvbridge_v1_AbortRequest__Output, _kvbridge_v1_AbortResponse__Output>
  Alloc: MethodDefinition<_kvbridge_v1_AllocRequest, _kvbridge_v1_AllocResponse, _kvbridge_v1_AllocRequest__Output, _kvbridge_v1_AllocResponse__Output>
  AwaitReady: MethodDefinition<_kvbridge_v1_AwaitReadyRequest, _kvbridge_v1_AwaitReadyResponse, _kvbridge_v1_AwaitReadyRequest__Output, _kvbridge_v1_AwaitReadyResponse__Output>
  Commit: MethodDefinition<_kvbridge_v1_CommitRequest, _kvbridge_v1_CommitResponse, _kvbridge_v1_CommitRequest__Output, _kvbridge_v1_CommitResponse__Output>
  Hello: MethodDefinition<_kvbridge_v1_HelloRequest, _kvbridge_v1_HelloResponse, _kvbridge_v1_HelloRequest__Output, _kvbridge_v1_HelloResponse__Output>
  Release: MethodDefinition<_kvbridge_v1_ReleaseRequest, _kvbridge_v1_ReleaseResponse, _kvbridge_v1_ReleaseRequest__Output, _kvbridge_v1_ReleaseResponse__Output>
  Renew: MethodDefinition<_kvbridge_v1_RenewRequest, _kvbridge_v1_RenewResponse, _kvbridge_v1_RenewRequest__Output, _kvbridge_v1_RenewResponse__Output>
}
