// Original file: proto/kvbridge/v1/receiver.proto

export const KeyState = {
  KEY_STATE_UNSPECIFIED: 'KEY_STATE_UNSPECIFIED',
  KEY_STATE_WRITING: 'KEY_STATE_WRITING',
  KEY_STATE_READY: 'KEY_STATE_READY',
  KEY_STATE_FAILED: 'KEY_STATE_FAILED',
} as const;

export type KeyState =
  | 'KEY_STATE_UNSPECIFIED'
  | 0
  | 'KEY_STATE_WRITING'
  | 1
  | 'KEY_STATE_READY'
  | 2
  | 'KEY_STATE_FAILED'
  | 3

export type KeyState__Output = typeof KeyState[keyof typeof KeyState]
