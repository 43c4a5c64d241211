// Original file: proto/kvbridge/v1/inspect.proto


export interface ListRequestsRequest {
}

export interface ListRequestsRequest__Output {
}
