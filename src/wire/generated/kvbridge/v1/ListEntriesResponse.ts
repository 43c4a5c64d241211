// Original file: proto/kvbridge/v1/inspect.proto

import type { EntryInfo as _kvbridge_v1_EntryInfo, EntryInfo__Output as _kvbridge_v1_EntryInfo__Output } from '../../kvbridge/v1/EntryInfo.js';

export interface ListEntriesResponse {
  'entries'?: (_kvbridge_v1_EntryInfo)[];
  'total'?: (number);
}

export interface ListEntriesResponse__Output {
  'entries': (_kvbridge_v1_EntryInfo__Output)[];
  'total': (number);
}
