// Original file: proto/kvbridge/v1/receiver.proto

import type { KeyState as _kvbridge_v1_KeyState, KeyState__Output as _kvbridge_v1_KeyState__Output } from '../../kvbridge/v1/KeyState.js';

export interface AwaitReadyResponse {
  'allReady'?: (boolean);
  'keys'?: (string)[];
  'states'?: (_kvbridge_v1_KeyState)[];
}

export interface AwaitReadyResponse__Output {
  'allReady': (boolean);
  'keys': (string)[];
  'states': (_kvbridge_v1_KeyState__Output)[];
}
