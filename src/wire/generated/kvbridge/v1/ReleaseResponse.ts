// Original file: proto/kvbridge/v1/receiver.proto

import type { ReleaseFailure as _kvbridge_v1_ReleaseFailure, ReleaseFailure__Output as _kvbridge_v1_ReleaseFailure__Output } from '../../kvbridge/v1/ReleaseFailure.js';

export interface ReleaseResponse {
  'pinsReleased'?: (number);
  'released'?: (number);
  'failures'?: (_kvbridge_v1_ReleaseFailure)[];
}

export interface ReleaseResponse__Output {
  'pinsReleased': (number);
  'released': (number);
  'failures': (_kvbridge_v1_ReleaseFailure__Output)[];
}
