// Original file: proto/kvbridge/v1/engine.proto

import type { ChatMessage as _kvbridge_v1_ChatMessage, ChatMessage__Output as _kvbridge_v1_ChatMessage__Output } from '../../kvbridge/v1/ChatMessage.js';

export interface RenderChatRequest {
  'model'?: (string);
  'messages'?: (_kvbridge_v1_ChatMessage)[];
}

export interface RenderChatRequest__Output {
  'model': (string);
  'messages': (_kvbridge_v1_ChatMessage__Output)[];
}
