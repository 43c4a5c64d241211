import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { ChecksumKeysRequest as _kvbridge_v1_ChecksumKeysRequest, ChecksumKeysRequest__Output as _kvbridge_v1_ChecksumKeysRequest__Output } from './kvbridge/v1/ChecksumKeysRequest.js';
import type { ChecksumKeysResponse as _kvbridge_v1_ChecksumKeysResponse, ChecksumKeysResponse__Output as _kvbridge_v1_ChecksumKeysResponse__Output } from './kvbridge/v1/ChecksumKeysResponse.js';
import type { EntryInfo as _kvbridge_v1_EntryInfo, EntryInfo__Output as _kvbridge_v1_EntryInfo__Output } from './kvbridge/v1/EntryInfo.js';
import type { GetStatsRequest as _kvbridge_v1_GetStatsRequest, GetStatsRequest__Output as _kvbridge_v1_GetStatsRequest__Output } from './kvbridge/v1/GetStatsRequest.js';
import type { InspectClient as _kvbridge_v1_InspectClient, InspectDefinition as _kvbridge_v1_InspectDefinition } from './kvbridge/v1/Inspect.js';
import type { KeyChecksum as _kvbridge_v1_KeyChecksum, KeyChecksum__Output as _kvbridge_v1_KeyChecksum__Output } from './kvbridge/v1/KeyChecksum.js';
import type { ListEntriesRequest as _kvbridge_v1_ListEntriesRequest, ListEntriesRequest__Output as _kvbridge_v1_ListEntriesRequest__Output } from './kvbridge/v1/ListEntriesRequest.js';
import type { ListEntriesResponse as _kvbridge_v1_ListEntriesResponse, ListEntriesResponse__Output as _kvbridge_v1_ListEntriesResponse__Output } from './kvbridge/v1/ListEntriesResponse.js';
import type { ListRequestsRequest as _kvbridge_v1_ListRequestsRequest, ListRequestsRequest__Output as _kvbridge_v1_ListRequestsRequest__Output } from './kvbridge/v1/ListRequestsRequest.js';
import type { ListRequestsResponse as _kvbridge_v1_ListRequestsResponse, ListRequestsResponse__Output as _kvbridge_v1_ListRequestsResponse__Output } from './kvbridge/v1/ListRequestsResponse.js';
import type { ModelStats as _kvbridge_v1_ModelStats, ModelStats__Output as _kvbridge_v1_ModelStats__Output } from './kvbridge/v1/ModelStats.js';
import type { RequestInfo as _kvbridge_v1_RequestInfo, RequestInfo__Output as _kvbridge_v1_RequestInfo__Output } from './kvbridge/v1/RequestInfo.js';
import type { Stats as _kvbridge_v1_Stats, Stats__Output as _kvbridge_v1_Stats__Output } from './kvbridge/v1/Stats.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  kvbridge: {
    v1: {
      ChecksumKeysRequest: MessageTypeDefinition<_kvbridge_v1_ChecksumKeysRequest, _kvbridge_v1_ChecksumKeysRequest__Output>
      ChecksumKeysResponse: MessageTypeDefinition<_kvbridge_v1_ChecksumKeysResponse, _kvbridge_v1_ChecksumKeysResponse__Output>
      EntryInfo: MessageTypeDefinition<_kvbridge_v1_EntryInfo, _kvbridge_v1_EntryInfo__Output>
      GetStatsRequest: MessageTypeDefinition<_kvbridge_v1_GetStatsRequest, _kvbridge_v1_GetStatsRequest__Output>
      Inspect: SubtypeConstructor<typeof grpc.Client, _kvbridge_v1_InspectClient> & { service: _kvbridge_v1_InspectDefinition }
      KeyChecksum: MessageTypeDefinition<_kvbridge_v1_KeyChecksum, _kvbridge_v1_KeyChecksum__Output>
      ListEntriesRequest: MessageTypeDefinition<_kvbridge_v1_ListEntriesRequest, _kvbridge_v1_ListEntriesRequest__Output>
      ListEntriesResponse: MessageTypeDefinition<_kvbridge_v1_ListEntriesResponse, _kvbridge_v1_ListEntriesResponse__Output>
      ListRequestsRequest: MessageTypeDefinition<_kvbridge_v1_ListRequestsRequest, _kvbridge_v1_ListRequestsRequest__Output>
      ListRequestsResponse: MessageTypeDefinition<_kvbridge_v1_ListRequestsResponse, _kvbridge_v1_ListRequestsResponse__Output>
      ModelStats: MessageTypeDefinition<_kvbridge_v1_ModelStats, _kvbridge_v1_ModelStats__Output>
      RequestInfo: MessageTypeDefinition<_kvbridge_v1_RequestInfo, _kvbridge_v1_RequestInfo__Output>
      Stats: MessageTypeDefinition<_kvbridge_v1_Stats, _kvbridge_v1_Stats__Output>
    }
  }
}

