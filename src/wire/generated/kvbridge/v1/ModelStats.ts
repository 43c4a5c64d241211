// Original file: proto/kvbridge/v1/inspect.proto

import type { Long } from '@grpc/proto-loader';

export interface ModelStats {
  'id'?: (string);
  'state'?: (string);
  'sequencesInUse'?: (number);
  'sequencesTotal'?: (number);
  'prefixCacheChunks'?: (number | string | Long);
  'prefixCacheBytes'?: (number | string | Long);
  'prefixCacheBudgetBytes'?: (number | string | Long);
  'prefixCacheLookups'?: (number | string | Long);
  'prefixCacheHitChunks'?: (number | string | Long);
}

export interface ModelStats__Output {
  'id': (string);
  'state': (string);
  'sequencesInUse': (number);
  'sequencesTotal': (number);
  'prefixCacheChunks': (number);
  'prefixCacheBytes': (number);
  'prefixCacheBudgetBytes': (number);
  'prefixCacheLookups': (number);
  'prefixCacheHitChunks': (number);
}
