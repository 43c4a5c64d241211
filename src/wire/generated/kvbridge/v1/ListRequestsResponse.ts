// Original file: proto/kvbridge/v1/inspect.proto

import type { RequestInfo as _kvbridge_v1_RequestInfo, RequestInfo__Output as _kvbridge_v1_RequestInfo__Output } from '../../kvbridge/v1/RequestInfo.js';

export interface ListRequestsResponse {
  'requests'?: (_kvbridge_v1_RequestInfo)[];
}

export interface ListRequestsResponse__Output {
  'requests': (_kvbridge_v1_RequestInfo__Output)[];
}
