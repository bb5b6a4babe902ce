"""The KServe v2 REST transport (with Triton's extensions), beside gRPC on the same loop and data plane; the model
browser (server/browser/) is mounted on its app."""
