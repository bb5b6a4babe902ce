"""zoo: train PyTorch MLP classifiers, export them to ONNX, serve them over KServe v2 gRPC."""

__version__ = "0.1.0"
