// Original file: proto/kvbridge/v1/models.proto


export interface ListModelsRequest {
}

export interface ListModelsRequest__Output {
}
