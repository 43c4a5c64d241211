// Original file: proto/kvbridge/v1/inspect.proto

import type { Long } from '@grpc/proto-loader';

export interface EntryInfo {
  'key'?: (string);
  'state'?: (string);
  'refcount'?: (number);
  'pinnedBy'?: (string)[];
  'slot'?: (number | string | Long);
  'size'?: (number | string | Long);
  'ageMs'?: (number | string | Long);
  'leaseLeftMs'?: (number | string | Long);
  'owner'?: (string);
}

export interface EntryInfo__Output {
  'key': (string);
  'state': (string);
  'refcount': (number);
  'pinnedBy': (string)[];
  'slot': (number);
  'size': (number);
  'ageMs': (number);
  'leaseLeftMs': (number);
  'owner': (string);
}
