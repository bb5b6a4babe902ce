"""The gRPC transport: KServe v2 / Triton messages in and out of the data plane; the only place that imports grpc."""
