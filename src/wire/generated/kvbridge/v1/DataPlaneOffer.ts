// Original file: proto/kvbridge/v1/receiver.proto

import type { Long } from '@grpc/proto-loader';

export interface DataPlaneOffer {
  'transport'?: (string);
  'tcpHost'?: (string);
  'tcpPort'?: (number);
  'ucxWorkerAddress'?: (Buffer | Uint8Array | string);
  'ucxRkey'?: (Buffer | Uint8Array | string);
  'ucxBaseAddress'?: (number | string | Long);
}

export interface DataPlaneOffer__Output {
  'transport': (string);
  'tcpHost': (string);
  'tcpPort': (number);
  'ucxWorkerAddress': (Buffer);
  'ucxRkey': (Buffer);
  'ucxBaseAddress': (number);
}
