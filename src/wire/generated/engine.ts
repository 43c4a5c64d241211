import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { CachedPrefixRequest as _kvbridge_v1_CachedPrefixRequest, CachedPrefixRequest__Output as _kvbridge_v1_CachedPrefixRequest__Output } from './kvbridge/v1/CachedPrefixRequest.js';
import type { CachedPrefixResponse as _kvbridge_v1_CachedPrefixResponse, CachedPrefixResponse__Output as _kvbridge_v1_CachedPrefixResponse__Output } from './kvbridge/v1/CachedPrefixResponse.js';
import type { ChatMessage as _kvbridge_v1_ChatMessage, ChatMessage__Output as _kvbridge_v1_ChatMessage__Output } from './kvbridge/v1/ChatMessage.js';
import type { DecodeClient as _kvbridge_v1_DecodeClient, DecodeDefinition as _kvbridge_v1_DecodeDefinition } from './kvbridge/v1/Decode.js';
import type { DetokenizeRequest as _kvbridge_v1_DetokenizeRequest, DetokenizeRequest__Output as _kvbridge_v1_DetokenizeRequest__Output } from './kvbridge/v1/DetokenizeRequest.js';
import type { DetokenizeResponse as _kvbridge_v1_DetokenizeResponse, DetokenizeResponse__Output as _kvbridge_v1_DetokenizeResponse__Output } from './kvbridge/v1/DetokenizeResponse.js';
import type { GenerateEvent as _kvbridge_v1_GenerateEvent, GenerateEvent__Output as _kvbridge_v1_GenerateEvent__Output } from './kvbridge/v1/GenerateEvent.js';
import type { GenerateRequest as _kvbridge_v1_GenerateRequest, GenerateRequest__Output as _kvbridge_v1_GenerateRequest__Output } from './kvbridge/v1/GenerateRequest.js';
import type { MatchPrefixRequest as _kvbridge_v1_MatchPrefixRequest, MatchPrefixRequest__Output as _kvbridge_v1_MatchPrefixRequest__Output } from './kvbridge/v1/MatchPrefixRequest.js';
import type { MatchPrefixResponse as _kvbridge_v1_MatchPrefixResponse, MatchPrefixResponse__Output as _kvbridge_v1_MatchPrefixResponse__Output } from './kvbridge/v1/MatchPrefixResponse.js';
import type { PlanRequest as _kvbridge_v1_PlanRequest, PlanRequest__Output as _kvbridge_v1_PlanRequest__Output } from './kvbridge/v1/PlanRequest.js';
import type { PlanResponse as _kvbridge_v1_PlanResponse, PlanResponse__Output as _kvbridge_v1_PlanResponse__Output } from './kvbridge/v1/PlanResponse.js';
import type { PrefillClient as _kvbridge_v1_PrefillClient, PrefillDefinition as _kvbridge_v1_PrefillDefinition } from './kvbridge/v1/Prefill.js';
import type { PrefillRequest as _kvbridge_v1_PrefillRequest, PrefillRequest__Output as _kvbridge_v1_PrefillRequest__Output } from './kvbridge/v1/PrefillRequest.js';
import type { PrefillResponse as _kvbridge_v1_PrefillResponse, PrefillResponse__Output as _kvbridge_v1_PrefillResponse__Output } from './kvbridge/v1/PrefillResponse.js';
import type { RenderChatRequest as _kvbridge_v1_RenderChatRequest, RenderChatRequest__Output as _kvbridge_v1_RenderChatRequest__Output } from './kvbridge/v1/RenderChatRequest.js';
import type { RenderChatResponse as _kvbridge_v1_RenderChatResponse, RenderChatResponse__Output as _kvbridge_v1_RenderChatResponse__Output } from './kvbridge/v1/RenderChatResponse.js';
import type { TokenLogprob as _kvbridge_v1_TokenLogprob, TokenLogprob__Output as _kvbridge_v1_TokenLogprob__Output } from './kvbridge/v1/TokenLogprob.js';
import type { TokenizeRequest as _kvbridge_v1_TokenizeRequest, TokenizeRequest__Output as _kvbridge_v1_TokenizeRequest__Output } from './kvbridge/v1/TokenizeRequest.js';
import type { TokenizeResponse as _kvbridge_v1_TokenizeResponse, TokenizeResponse__Output as _kvbridge_v1_TokenizeResponse__Output } from './kvbridge/v1/TokenizeResponse.js';
import type { TopLogprob as _kvbridge_v1_TopLogprob, TopLogprob__Output as _kvbridge_v1_TopLogprob__Output } from './kvbridge/v1/TopLogprob.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  kvbridge: {
    v1: {
      CachedPrefixRequest: MessageTypeDefinition<_kvbridge_v1_CachedPrefixRequest, _kvbridge_v1_CachedPrefixRequest__Output>
      CachedPrefixResponse: MessageTypeDefinition<_kvbridge_v1_CachedPrefixResponse, _kvbridge_v1_CachedPrefixResponse__Output>
      ChatMessage: MessageTypeDefinition<_kvbridge_v1_ChatMessage, _kvbridge_v1_ChatMessage__Output>
      Decode: SubtypeConstructor<typeof grpc.Client, _kvbridge_v1_DecodeClient> & { service: _kvbridge_v1_DecodeDefinition }
      DetokenizeRequest: MessageTypeDefinition<_kvbridge_v1_DetokenizeRequest, _kvbridge_v1_DetokenizeRequest__Output>
      DetokenizeResponse: MessageTypeDefinition<_kvbridge_v1_DetokenizeResponse, _kvbridge_v1_DetokenizeResponse__Output>
      GenerateEvent: MessageTypeDefinition<_kvbridge_v1_GenerateEvent, _kvbridge_v1_GenerateEvent__Output>
      GenerateRequest: MessageTypeDefinition<_kvbridge_v1_GenerateRequest, _kvbridge_v1_GenerateRequest__Output>
      MatchPrefixRequest: MessageTypeDefinition<_kvbridge_v1_MatchPrefixRequest, _kvbridge_v1_MatchPrefixRequest__Output>
      MatchPrefixResponse: MessageTypeDefinition<_kvbridge_v1_MatchPrefixResponse, _kvbridge_v1_MatchPrefixResponse__Output>
      PlanRequest: MessageTypeDefinition<_kvbridge_v1_PlanRequest, _kvbridge_v1_PlanRequest__Output>
      PlanResponse: MessageTypeDefinition<_kvbridge_v1_PlanResponse, _kvbridge_v1_PlanResponse__Output>
      Prefill: SubtypeConstructor<typeof grpc.Client, _kvbridge_v1_PrefillClient> & { service: _kvbridge_v1_PrefillDefinition }
      PrefillRequest: MessageTypeDefinition<_kvbridge_v1_PrefillRequest, _kvbridge_v1_PrefillRequest__Output>
      PrefillResponse: MessageTypeDefinition<_kvbridge_v1_PrefillResponse, _kvbridge_v1_PrefillResponse__Output>
      RenderChatRequest: MessageTypeDefinition<_kvbridge_v1_RenderChatRequest, _kvbridge_v1_RenderChatRequest__Output>
      RenderChatResponse: MessageTypeDefinition<_kvbridge_v1_RenderChatResponse, _kvbridge_v1_RenderChatResponse__Output>
      TokenLogprob: MessageTypeDefinition<_kvbridge_v1_TokenLogprob, _kvbridge_v1_TokenLogprob__Output>
      TokenizeRequest: MessageTypeDefinition<_kvbridge_v1_TokenizeRequest, _kvbridge_v1_TokenizeRequest__Output>
      TokenizeResponse: MessageTypeDefinition<_kvbridge_v1_TokenizeResponse, _kvbridge_v1_TokenizeResponse__Output>
      TopLogprob: MessageTypeDefinition<_kvbridge_v1_TopLogprob, _kvbridge_v1_TopLogprob__Output>
    }
  }
}

