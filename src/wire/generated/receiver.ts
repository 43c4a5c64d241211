import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AbortRequest as _kvbridge_v1_AbortRequest, AbortRequest__Output as _kvbridge_v1_AbortRequest__Output } from './kvbridge/v1/AbortRequest.js';
import type { AbortResponse as _kvbridge_v1_AbortResponse, AbortResponse__Output as _kvbridge_v1_AbortResponse__Output } from './kvbridge/v1/AbortResponse.js';
import type { AllocRequest as _kvbridge_v1_AllocRequest, AllocRequest__Output as _kvbridge_v1_AllocRequest__Output } from './kvbridge/v1/AllocRequest.js';
import type { AllocResponse as _kvbridge_v1_AllocResponse, AllocResponse__Output as _kvbridge_v1_AllocResponse__Output } from './kvbridge/v1/AllocResponse.js';
import type { AwaitReadyRequest as _kvbridge_v1_AwaitReadyRequest, AwaitReadyRequest__Output as _kvbridge_v1_AwaitReadyRequest__Output } from './kvbridge/v1/AwaitReadyRequest.js';
import type { AwaitReadyResponse as _kvbridge_v1_AwaitReadyResponse, AwaitReadyResponse__Output as _kvbridge_v1_AwaitReadyResponse__Output } from './kvbridge/v1/AwaitReadyResponse.js';
import type { ChunkProof as _kvbridge_v1_ChunkProof, ChunkProof__Output as _kvbridge_v1_ChunkProof__Output } from './kvbridge/v1/ChunkProof.js';
import type { CommitRequest as _kvbridge_v1_CommitRequest, CommitRequest__Output as _kvbridge_v1_CommitRequest__Output } from './kvbridge/v1/CommitRequest.js';
import type { CommitResponse as _kvbridge_v1_CommitResponse, CommitResponse__Output as _kvbridge_v1_CommitResponse__Output } from './kvbridge/v1/CommitResponse.js';
import type { DataPlaneOffer as _kvbridge_v1_DataPlaneOffer, DataPlaneOffer__Output as _kvbridge_v1_DataPlaneOffer__Output } from './kvbridge/v1/DataPlaneOffer.js';
import type { HelloRequest as _kvbridge_v1_HelloRequest, HelloRequest__Output as _kvbridge_v1_HelloRequest__Output } from './kvbridge/v1/HelloRequest.js';
import type { HelloResponse as _kvbridge_v1_HelloResponse, HelloResponse__Output as _kvbridge_v1_HelloResponse__Output } from './kvbridge/v1/HelloResponse.js';
import type { KvReceiverClient as _kvbridge_v1_KvReceiverClient, KvReceiverDefinition as _kvbridge_v1_KvReceiverDefinition } from './kvbridge/v1/KvReceiver.js';
import type { ReleaseFailure as _kvbridge_v1_ReleaseFailure, ReleaseFailure__Output as _kvbridge_v1_ReleaseFailure__Output } from './kvbridge/v1/ReleaseFailure.js';
import type { ReleaseRequest as _kvbridge_v1_ReleaseRequest, ReleaseRequest__Output as _kvbridge_v1_ReleaseRequest__Output } from './kvbridge/v1/ReleaseRequest.js';
import type { ReleaseResponse as _kvbridge_v1_ReleaseResponse, ReleaseResponse__Output as _kvbridge_v1_ReleaseResponse__Output } from './kvbridge/v1/ReleaseResponse.js';
import type { RenewRequest as _kvbridge_v1_RenewRequest, RenewRequest__Output as _kvbridge_v1_RenewRequest__Output } from './kvbridge/v1/RenewRequest.js';
import type { RenewResponse as _kvbridge_v1_RenewResponse, RenewResponse__Output as _kvbridge_v1_RenewResponse__Output } from './kvbridge/v1/RenewResponse.js';
import type { TransportNotOffered as _kvbridge_v1_TransportNotOffered, TransportNotOffered__Output as _kvbridge_v1_TransportNotOffered__Output } from './kvbridge/v1/TransportNotOffered.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  kvbridge: {
    v1: {
      AbortRequest: MessageTypeDefinition<_kvbridge_v1_AbortRequest, _kvbridge_v1_AbortRequest__Output>
      AbortResponse: MessageTypeDefinition<_kvbridge_v1_AbortResponse, _kvbridge_v1_AbortResponse__Output>
      AllocRequest: MessageTypeDefinition<_kvbridge_v1_AllocRequest, _kvbridge_v1_AllocRequest__Output>
      AllocResponse: MessageTypeDefinition<_kvbridge_v1_AllocResponse, _kvbridge_v1_AllocResponse__Output>
      AwaitReadyRequest: MessageTypeDefinition<_kvbridge_v1_AwaitReadyRequest, _kvbridge_v1_AwaitReadyRequest__Output>
      AwaitReadyResponse: MessageTypeDefinition<_kvbridge_v1_AwaitReadyResponse, _kvbridge_v1_AwaitReadyResponse__Output>
      ChunkProof: MessageTypeDefinition<_kvbridge_v1_ChunkProof, _kvbridge_v1_ChunkProof__Output>
      CommitRequest: MessageTypeDefinition<_kvbridge_v1_CommitRequest, _kvbridge_v1_CommitRequest__Output>
      CommitResponse: MessageTypeDefinition<_kvbridge_v1_CommitResponse, _kvbridge_v1_CommitResponse__Output>
      DataPlaneOffer: MessageTypeDefinition<_kvbridge_v1_DataPlaneOffer, _kvbridge_v1_DataPlaneOffer__Output>
      HelloRequest: MessageTypeDefinition<_kvbridge_v1_HelloRequest, _kvbridge_v1_HelloRequest__Output>
      HelloResponse: MessageTypeDefinition<_kvbridge_v1_HelloResponse, _kvbridge_v1_HelloResponse__Output>
      KeyState: EnumTypeDefinition
      KvReceiver: SubtypeConstructor<typeof grpc.Client, _kvbridge_v1_KvReceiverClient> & { service: _kvbridge_v1_KvReceiverDefinition }
      ReleaseFailure: MessageTypeDefinition<_kvbridge_v1_ReleaseFailure, _kvbridge_v1_ReleaseFailure__Output>
      ReleaseRequest: MessageTypeDefinition<_kvbridge_v1_ReleaseRequest, _kvbridge_v1_ReleaseRequest__Output>
      ReleaseResponse: MessageTypeDefinition<_kvbridge_v1_ReleaseResponse, _kvbridge_v1_ReleaseResponse__Output>
      RenewRequest: MessageTypeDefinition<_kvbridge_v1_RenewRequest, _kvbridge_v1_RenewRequest__Output>
      RenewResponse: MessageTypeDefinition<_kvbridge_v1_RenewResponse, _kvbridge_v1_RenewResponse__Output>
      TransportNotOffered: MessageTypeDefinition<_kvbridge_v1_TransportNotOffered, _kvbridge_v1_TransportNotOffered__Output>
    }
  }
}

