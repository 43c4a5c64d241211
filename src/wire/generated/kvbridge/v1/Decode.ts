// Original file: proto/kvbridge/v1/engine.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GenerateEvent as _kvbridge_v1_GenerateEvent, GenerateEvent__Output as _kvbridge_v1_GenerateEvent__Output } from '../../kvbridge/v1/GenerateEvent.js';
import type { GenerateRequest as _kvbridge_v1_GenerateRequest, GenerateRequest__Output as _kvbridge_v1_GenerateRequest__Output } from '../../kvbridge/v1/GenerateRequest.js';
import type { MatchPrefixRequest as _kvbridge_v1_MatchPrefixRequest, MatchPrefixRequest__Output as _kvbridge_v1_MatchPrefixRequest__Output } from '../../kvbridge/v1/MatchPrefixRequest.js';
import type { MatchPrefixResponse as _kvbridge_v1_MatchPrefixResponse, MatchPrefixResponse__Output as _kvbridge_v1_MatchPrefixResponse__Output } from '../../kvbridge/v1/MatchPrefixResponse.js';

export interface DecodeClient extends grpc.Client {
  Generate(argument: _kvbridge_v1_GenerateRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_kvbridge_v1_GenerateEvent__Output>;
  Generate(argument: _kvbridge_v1_GenerateRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_kvbridge_v1_GenerateEvent__Output>;
  generate(argument: _kvbridge_v1_GenerateRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_kvbridge_v1_GenerateEvent__Output>;
  generate(argument: _kvbridge_v1_GenerateRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_kvbridge_v1_GenerateEvent__Output>;
  
  MatchPrefix(argument: _kvbridge_v1_MatchPrefixRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_MatchPrefixResponse__Output>): grpc.ClientUnaryCall;
  MatchPrefix(argument: _kvbridge_v1_MatchPrefixRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_MatchPrefixResponse__Output>): grpc.ClientUnaryCall;
  MatchPrefix(argument: _kvbridge_v1_MatchPrefixRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_MatchPrefixResponse__Output>): grpc.ClientUnaryCall;
  MatchPrefix(argument: _kvbridge_v1_MatchPrefixRequest, callback: grpc.requestCallback<_kvbridge_v1_MatchPrefixResponse__Output>): grpc.ClientUnaryCall;
  matchPrefix(argument: _kvbridge_v1_MatchPrefixRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_MatchPrefixResponse__Output>): grpc.ClientUnaryCall;
  matchPrefix(argument: _kvbridge_v1_MatchPrefixRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_MatchPrefixResponse__Output>): grpc.ClientUnaryCall;
  matchPrefix(argument: _kvbridge_v1_MatchPrefixRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_MatchPrefixResponse__Output>): grpc.ClientUnaryCall;
  matchPrefix(argument: _kvbridge_v1_MatchPrefixRequest, callback: grpc.requestCallback<_kvbridge_v1_MatchPrefixResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface DecodeHandlers extends grpc.UntypedServiceImplementation {
  Generate: grpc.handleServerStreamingCall<_kvbridge_v1_GenerateRequest__Output, _kvbridge_v1_GenerateEvent>;
  
  MatchPrefix: grpc.handleUnaryCall<_kvbridge_v1_MatchPrefixRequest__Output, _kvbridge_v1_MatchPrefixResponse>;
  
}

export interface DecodeDefinition extends grpc.ServiceDefinition {
  Generate: MethodDefinition<_kvbridge_v1_GenerateRequest, _kvbridge_v1_GenerateEvent, _kvbridge_v1_GenerateRequest__Output, _kvbridge_v1_GenerateEvent__Output>
  MatchPrefix: MethodDefinition<_kvbridge_v1_MatchPrefixRequest, _kvbridge_v1_MatchPrefixResponse, _kvbridge_v1_MatchPrefixRequest__Output, _kvbridge_v1_MatchPrefixResponse__Output>
}
