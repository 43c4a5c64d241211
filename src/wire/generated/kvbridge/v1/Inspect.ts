// Original file: proto/kvbridge/v1/inspect.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ChecksumKeysRequest as _kvbridge_v1_ChecksumKeysRequest, ChecksumKeysRequest__Output as _kvbridge_v1_ChecksumKeysRequest__Output } from '../../kvbridge/v1/ChecksumKeysRequest.js';
import type { ChecksumKeysResponse as _kvbridge_v1_ChecksumKeysResponse, ChecksumKeysResponse__Output as _kvbridge_v1_ChecksumKeysResponse__Output } from '../../kvbridge/v1/ChecksumKeysResponse.js';
import type { GetStatsRequest as _kvbridge_v1_GetStatsRequest, GetStatsRequest__Output as _kvbridge_v1_GetStatsRequest__Output } from '../../kvbridge/v1/GetStatsRequest.js';
import type { ListEntriesRequest as _kvbridge_v1_ListEntriesRequest, ListEntriesRequest__Output as _kvbridge_v1_ListEntriesRequest__Output } from '../../kvbridge/v1/ListEntriesRequest.js';
import type { ListEntriesResponse as _kvbridge_v1_ListEntriesResponse, ListEntriesResponse__Output as _kvbridge_v1_ListEntriesResponse__Output } from '../../kvbridge/v1/ListEntriesResponse.js';
import type { ListRequestsRequest as _kvbridge_v1_ListRequestsRequest, ListRequestsRequest__Output as _kvbridge_v1_ListRequestsRequest__Output } from '../../kvbridge/v1/ListRequestsRequest.js';
import type { ListRequestsResponse as _kvbridge_v1_ListRequestsResponse, ListRequestsResponse__Output as _kvbridge_v1_ListRequestsResponse__Output } from '../../kvbridge/v1/ListRequestsResponse.js';
import type { Stats as _kvbridge_v1_Stats, Stats__Output as _kvbridge_v1_Stats__Output } from '../../kvbridge/v1/Stats.js';

export interface InspectClient extends grpc.Client {
  ChecksumKeys(argument: _kvbridge_v1_ChecksumKeysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ChecksumKeysResponse__Output>): grpc.ClientUnaryCall;
  ChecksumKeys(argument: _kvbridge_v1_ChecksumKeysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ChecksumKeysResponse__Output>): grpc.ClientUnaryCall;
  ChecksumKeys(argument: _kvbridge_v1_ChecksumKeysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ChecksumKeysResponse__Output>): grpc.ClientUnaryCall;
  ChecksumKeys(argument: _kvbridge_v1_ChecksumKeysRequest, callback: grpc.requestCallback<_kvbridge_v1_ChecksumKeysResponse__Output>): grpc.ClientUnaryCall;
  checksumKeys(argument: _kvbridge_v1_ChecksumKeysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ChecksumKeysResponse__Output>): grpc.ClientUnaryCall;
  checksumKeys(argument: _kvbridge_v1_ChecksumKeysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ChecksumKeysResponse__Output>): grpc.ClientUnaryCall;
  checksumKeys(argument: _kvbridge_v1_ChecksumKeysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ChecksumKeysResponse__Output>): grpc.ClientUnaryCall;
  checksumKeys(argument: _kvbridge_v1_ChecksumKeysRequest, callback: grpc.requestCallback<_kvbridge_v1_ChecksumKeysResponse__Output>): grpc.ClientUnaryCall;
  
  GetStats(argument: _kvbridge_v1_GetStatsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_Stats__Output>): grpc.ClientUnaryCall;
  GetStats(argument: _kvbridge_v1_GetStatsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_Stats__Output>): grpc.ClientUnaryCall;
  GetStats(argument: _kvbridge_v1_GetStatsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_Stats__Output>): grpc.ClientUnaryCall;
  GetStats(argument: _kvbridge_v1_GetStatsRequest, callback: grpc.requestCallback<_kvbridge_v1_Stats__Output>): grpc.ClientUnaryCall;
  getStats(argument: _kvbridge_v1_GetStatsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_Stats__Output>): grpc.ClientUnaryCall;
  getStats(argument: _kvbridge_v1_GetStatsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_Stats__Output>): grpc.ClientUnaryCall;
  getStats(argument: _kvbridge_v1_GetStatsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_Stats__Output>): grpc.ClientUnaryCall;
  getStats(argument: _kvbridge_v1_GetStatsRequest, callback: grpc.requestCallback<_kvbridge_v1_Stats__Output>): grpc.ClientUnaryCall;
  
  ListEntries(argument: _kvbridge_v1_ListEntriesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListEntries(argument: _kvbridge_v1_ListEntriesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListEntries(argument: _kvbridge_v1_ListEntriesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  ListEntries(argument: _kvbridge_v1_ListEntriesRequest, callback: grpc.requestCallback<_kvbridge_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  listEntries(argument: _kvbridge_v1_ListEntriesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  listEntries(argument: _kvbridge_v1_ListEntriesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  listEntries(argument: _kvbridge_v1_ListEntriesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  listEntries(argument: _kvbridge_v1_ListEntriesRequest, callback: grpc.requestCallback<_kvbridge_v1_ListEntriesResponse__Output>): grpc.ClientUnaryCall;
  
  ListRequests(argument: _kvbridge_v1_ListRequestsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListRequestsResponse__Output>): grpc.ClientUnaryCall;
  ListRequests(argument: _kvbridge_v1_ListRequestsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ListRequestsResponse__Output>): grpc.ClientUnaryCall;
  ListRequests(argument: _kvbridge_v1_ListRequestsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListRequestsResponse__Output>): grpc.ClientUnaryCall;
  ListRequests(argument: _kvbridge_v1_ListRequestsRequest, callback: grpc.requestCallback<_kvbridge_v1_ListRequestsResponse__Output>): grpc.ClientUnaryCall;
  listRequests(argument: _kvbridge_v1_ListRequestsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListRequestsResponse__Output>): grpc.ClientUnaryCall;
  listRequests(argument: _kvbridge_v1_ListRequestsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_kvbridge_v1_ListRequestsResponse__Output>): grpc.ClientUnaryCall;
  listRequests(argument: _kvbridge_v1_ListRequestsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_kvbridge_v1_ListRequestsResponse__Output>): grpc.ClientUnaryCall;
  listRequests(argument: _kvbridge_v1_ListRequestsRequest, callback: grpc.requestCallback<_kvbridge_v1_ListRequestsResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface InspectHandlers extends grpc.UntypedServiceImplementation {
  ChecksumKeys: grpc.handleUnaryCall<_kvbridge_v1_ChecksumKeysRequest__Output, _kvbridge_v1_ChecksumKeysResponse>;
  
  GetStats: grpc.handleUnaryCall<_kvbridge_v1_GetStatsRequest__Output, _kvbridge_v1_Stats>;
  
  ListEntries: grpc.handleUnaryCall<_kvbridge_v1_ListEntriesRequest__Output, _kvbridge_v1_ListEntriesResponse>;
  
  ListRequests: grpc.handleUnaryCall<_kvbridge_v1_ListRequestsRequest__Output, _kvbridge_v1_ListRequestsResponse>;
  
}

export interface InspectDefinition extends grpc.ServiceDefinition {
  ChecksumKeys: MethodDefinition<_kvbridge_v1_ChecksumKeysRequest, _kvbridge_v1_ChecksumKeysResponse, _kvbridge_v1_ChecksumKeysRequest__Output, _kvbridge_v1_ChecksumKeysResponse__Output>
  GetStats: MethodDefinition<_kvbridge_v1_GetStatsRequest, _kvbridge_v1_Stats, _kvbridge_v1_GetStatsRequest__Output, _kvbridge_v1_Stats__Output>
  ListEntries: MethodDefinition<_kvbridge_v1_ListEntriesRequest, _kvbridge_v1_ListEntriesResponse, _kvbridge_v1_ListEntriesRequest__Output, _kvbridge_v1_ListEntriesResponse__Output>
  ListRequests: MethodDefinition<_kvbridge_v1_ListRequestsRequest, _kvbridge_v1_ListRequestsResponse, _kvbridge_v1_ListRequestsRequest__Output, _kvbridge_v1_ListRequestsResponse__Output>
}
