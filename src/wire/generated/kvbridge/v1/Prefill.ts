// Original file: proto/kvbridge/v1/engine.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CachedPrefixRequest as _kvbridge_v1_CachedPrefixRequest, CachedPrefixRequest__Output as _kvbridge_v1_CachedPrefixRequest__Output } from '../../kvbridge/v1/CachedPrefixRequest.js';
import type { CachedPrefixResponse as _kvbridge_v1_CachedPrefixResponse, CachedPrefixResponse__Output as _kvbridge_v1_CachedPrefixResponse__Output } from '../../kvbridge/v1/CachedPrefixResponse.js';
import type { DetokenizeRequest as _kvbridge_v1_DetokenizeRequest, DetokenizeRequest__Output as _kvbridge_v1_DetokenizeRequest__Output } from '../../kvbridge/v1/DetokenizeRequest.js';
import type { DetokenizeResponse as _kvbridge_v1_DetokenizeResponse, DetokenizeResponse__Output as _kvbridge_v1_DetokenizeResponse__Output } from '../../kvbridge/v1/DetokenizeResponse.js';
import type { PlanRequest as _kvbridge_v1_PlanRequest, PlanRequest__Output as _kvbridge_v1_PlanRequest__Output } from '../../kvbridge/v1/PlanRequest.js';
import type { PlanResponse as _kvbridge_v1_PlanResponse, PlanResponse__Output as _kvbridge_v1_PlanResponse__Output } from '../../kvbridge/v1/PlanResponse.js';
import type { PrefillRequest as _kvbridge_v1_PrefillRequest, PrefillRequest__Output as _kvbridge_v1_PrefillRequest__Output } from '../../kvbridge/v1/PrefillRequest.js';
import type { PrefillResponse as _kvbridge_v1_PrefillResponse, PrefillResponse__Output as _kvbridge_v1_PrefillResponse__Output } from '../../kvbridge/v1/PrefillResponse.js';
import type { RenderChatRequest as _kvbridge_v1_RenderChatRequest, RenderChatRequest__Output as _kvbridge_v1_RenderChatRequest__Output } from '../../kvbridge/v1/RenderChatRequest.js';
import type { RenderChatResponse as _kvbridge_v1_RenderChatResponse, RenderChatResponse__Output as _kvbridge_v1_RenderChatResponse__Output } from '../../kvbridge/v1/RenderChatResponse.js';
import type { TokenizeRequest as _kvbridge_v1_TokenizeRequest, TokenizeRequest__Output as _kvbridge_v1_TokenizeRequest__Output } from '../../kvbridge/v1/TokenizeRequest.js';
import type { TokenizeResponse as _kvbridge_v1_TokenizeResponse, TokenizeResponse__Output as _kvbridge_v1_TokenizeResponse__Output } from '../../kvbridge/v1/TokenizeResponse.js';

export interface PrefillClient extends grpc.Client {
  CachedPrefix(argument: _kvbridge_v1_CachedPrefixRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_CachedPrefixResponse__Output>): grpc.ClientUnaryCall;
  CachedPrefix(argument: _kvbridge_v1_CachedPrefixRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_CachedPrefixResponse__Output>): grpc.ClientUnaryCall;
  CachedPrefix(argument: _kvbridge_v1_CachedPrefixRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_CachedPrefixResponse__Output>): grpc.ClientUnaryCall;
  CachedPrefix(argument: _kvbridge_v1_CachedPrefixRequest, callback: grpc.requestCallback<_kvbridge_v1_CachedPrefixResponse__Output>): grpc.ClientUnaryCall;
  cachedPrefix(argument: _kvbridge_v1_CachedPrefixRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_CachedPrefixResponse__Output>): grpc.ClientUnaryCall;
  cachedPrefix(argument: _kvbridge_v1_CachedPrefixRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_CachedPrefixResponse__Output>): grpc.ClientUnaryCall;
  cachedPrefix(argument: _kvbridge_v1_CachedPrefixRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_CachedPrefixResponse__Output>): grpc.ClientUnaryCall;
  cachedPrefix(argument: _kvbridge_v1_CachedPrefixRequest, callback: grpc.requestCallback<_kvbridge_v1_CachedPrefixResponse__Output>): grpc.ClientUnaryCall;
  
  Detokenize(argument: _kvbridge_v1_DetokenizeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_DetokenizeResponse__Output>): grpc.ClientUnaryCall;
  Detokenize(argument: _kvbridge_v1_DetokenizeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_DetokenizeResponse__Output>): grpc.ClientUnaryCall;
  Detokenize(argument: _kvbridge_v1_DetokenizeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_DetokenizeResponse__Output>): grpc.ClientUnaryCall;
  Detokenize(argument: _kvbridge_v1_DetokenizeRequest, callback: grpc.requestCallback<_kvbridge_v1_DetokenizeResponse__Output>): grpc.ClientUnaryCall;
  detokenize(argument: _kvbridge_v1_DetokenizeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_DetokenizeResponse__Output>): grpc.ClientUnaryCall;
  detokenize(argument: _kvbridge_v1_DetokenizeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_DetokenizeResponse__Output>): grpc.ClientUnaryCall;
  detokenize(argument: _kvbridge_v1_DetokenizeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_DetokenizeResponse__Output>): grpc.ClientUnaryCall;
  detokenize(argument: _kvbridge_v1_DetokenizeRequest, callback: grpc.requestCallback<_kvbridge_v1_DetokenizeResponse__Output>): grpc.ClientUnaryCall;
  
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
  
  RenderChat(argument: _kvbridge_v1_RenderChatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_RenderChatResponse__Output>): grpc.ClientUnaryCall;
  RenderChat(argument: _kvbridge_v1_RenderChatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_RenderChatResponse__Output>): grpc.ClientUnaryCall;
  RenderChat(argument: _kvbridge_v1_RenderChatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_RenderChatResponse__Output>): grpc.ClientUnaryCall;
  RenderChat(argument: _kvbridge_v1_RenderChatRequest, callback: grpc.requestCallback<_kvbridge_v1_RenderChatResponse__Output>): grpc.ClientUnaryCall;
  renderChat(argument: _kvbridge_v1_RenderChatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_RenderChatResponse__Output>): grpc.ClientUnaryCall;
  renderChat(argument: _kvbridge_v1_RenderChatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_RenderChatResponse__Output>): grpc.ClientUnaryCall;
  renderChat(argument: _kvbridge_v1_RenderChatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_RenderChatResponse__Output>): grpc.ClientUnaryCall;
  renderChat(argument: _kvbridge_v1_RenderChatRequest, callback: grpc.requestCallback<_kvbridge_v1_RenderChatResponse__Output>): grpc.ClientUnaryCall;
  
  Tokenize(argument: _kvbridge_v1_TokenizeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_TokenizeResponse__Output>): grpc.ClientUnaryCall;
  Tokenize(argument: _kvbridge_v1_TokenizeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_TokenizeResponse__Output>): grpc.ClientUnaryCall;
  Tokenize(argument: _kvbridge_v1_TokenizeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_TokenizeResponse__Output>): grpc.ClientUnaryCall;
  Tokenize(argument: _kvbridge_v1_TokenizeRequest, callback: grpc.requestCallback<_kvbridge_v1_TokenizeResponse__Output>): grpc.ClientUnaryCall;
  tokenize(argument: _kvbridge_v1_TokenizeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_TokenizeResponse__Output>): grpc.ClientUnaryCall;
  tokenize(argument: _kvbridge_v1_TokenizeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_TokenizeResponse__Output>): grpc.ClientUnaryCall;
  tokenize(argument: _kvbridge_v1_TokenizeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_TokenizeResponse__Output>): grpc.ClientUnaryCall;
  tokenize(argument: _kvbridge_v1_TokenizeRequest, callback: grpc.requestCallback<_kvbridge_v1_TokenizeResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface PrefillHandlers extends grpc.UntypedServiceImplementation {
  CachedPrefix: grpc.handleUnaryCall<_kvbridge_v1_CachedPrefixRequest__Output, _kvbridge_v1_CachedPrefixResponse>;
  
  Detokenize: grpc.handleUnaryCall<_kvbridge_v1_DetokenizeRequest__Output, _kvbridge_v1_DetokenizeResponse>;
  
  Plan: grpc.handleUnaryCall<_kvbridge_v1_PlanRequest__Output, _kvbridge_v1_PlanResponse>;
  
  Prefill: grpc.handleUnaryCall<_kvbridge_v1_PrefillRequest__Output, _kvbridge_v1_PrefillResponse>;
  
  RenderChat: grpc.handleUnaryCall<_kvbridge_v1_RenderChatRequest__Output, _kvbridge_v1_RenderChatResponse>;
  
  Tokenize: grpc.handleUnaryCall<_kvbridge_v1_TokenizeRequest__Output, _kvbridge_v1_TokenizeResponse>;
  
}

export interface PrefillDefinition extends grpc.ServiceDefinition {
  CachedPrefix: MethodDefinition<_kvbridge_v1_CachedPrefixRequest, _kvbridge_v1_CachedPrefixResponse, _kvbridge_v1_CachedPrefixRequest__Output, _kvbridge_v1_CachedPrefixResponse__Output>
  Detokenize: MethodDefinition<_kvbridge_v1_DetokenizeRequest, _kvbridge_v1_DetokenizeResponse, _kvbridge_v1_DetokenizeRequest__Output, _kvbridge_v1_DetokenizeResponse__Output>
  Plan: MethodDefinition<_kvbridge_v1_PlanRequest, _kvbridge_v1_PlanResponse, _kvbridge_v1_PlanRequest__Output, _kvbridge_v1_PlanResponse__Output>
  Prefill: MethodDefinition<_kvbridge_v1_PrefillRequest, _kvbridge_v1_PrefillResponse, _kvbridge_v1_PrefillRequest__Output, _kvbridge_v1_PrefillResponse__Output>
  RenderChat: MethodDefinition<_kvbridge_v1_RenderChatRequest, _kvbridge_v1_RenderChatResponse, _kvbridge_v1_RenderChatRequest__Output, _kvbridge_v1_RenderChatResponse__Output>
  Tokenize: MethodDefinition<_kvbridge_v1_TokenizeRequest, _kvbridge_v1_TokenizeResponse, _kvbridge_v1_TokenizeRequest__Output, _kvbridge_v1_TokenizeResponse__Output>
}
