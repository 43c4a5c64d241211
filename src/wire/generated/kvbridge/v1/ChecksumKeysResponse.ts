// Original file: proto/kvbridge/v1/inspect.proto

import type { KeyChecksum as _kvbridge_v1_KeyChecksum, KeyChecksum__Output as _kvbridge_v1_KeyChecksum__Output } from '../../kvbridge/v1/KeyChecksum.js';

export interface ChecksumKeysResponse {
  'checksums'?: (_kvbridge_v1_KeyChecksum)[];
}

export interface ChecksumKeysResponse__Output {
  'checksums': (_kvbridge_v1_KeyChecksum__Output)[];
}
