"""zoo.server: the KServe v2 gRPC inference server for exported zoo models (never imports torch)."""
