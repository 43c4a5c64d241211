// Original file: proto/kvbridge/v1/inspect.proto


export interface GetStatsRequest {
}

export interface GetStatsRequest__Output {
}
