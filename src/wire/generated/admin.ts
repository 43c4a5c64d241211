import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AdminClient as _kvbridge_v1_AdminClient, AdminDefinition as _kvbridge_v1_AdminDefinition } from './kvbridge/v1/Admin.js';
import type { AdminAbortRequest as _kvbridge_v1_AdminAbortRequest, AdminAbortRequest__Output as _kvbridge_v1_AdminAbortRequest__Output } from './kvbridge/v1/AdminAbortRequest.js';
import type { AdminAbortResponse as _kvbridge_v1_AdminAbortResponse, AdminAbortResponse__Output as _kvbridge_v1_AdminAbortResponse__Output } from './kvbridge/v1/AdminAbortResponse.js';
import type { EvictRequest as _kvbridge_v1_EvictRequest, EvictRequest__Output as _kvbridge_v1_EvictRequest__Output } from './kvbridge/v1/EvictRequest.js';
import type { EvictResponse as _kvbridge_v1_EvictResponse, EvictResponse__Output as _kvbridge_v1_EvictResponse__Output } from './kvbridge/v1/EvictResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  kvbridge: {
    v1: {
      Admin: SubtypeConstructor<typeof grpc.Client, _kvbridge_v1_AdminClient> & { service: _kvbridge_v1_AdminDefinition }
      AdminAbortRequest: MessageTypeDefinition<_kvbridge_v1_AdminAbortRequest, _kvbridge_v1_AdminAbortRequest__Output>
      AdminAbortResponse: MessageTypeDefinition<_kvbridge_v1_AdminAbortResponse, _kvbridge_v1_AdminAbortResponse__Output>
      EvictRequest: MessageTypeDefinition<_kvbridge_v1_EvictRequest, _kvbridge_v1_EvictRequest__Output>
      EvictResponse: MessageTypeDefinition<_kvbridge_v1_EvictResponse, _kvbridge_v1_EvictResponse__Output>
    }
  }
}

