"""zoo.client: Python clients of a zoo server (grpc, numpy and zoo.proto only)."""

from zoo.client.aio import AsyncZooClient
from zoo.client.codec import ClientError, ModelInfo, Prediction
from zoo.client.sync import ZooClient

__all__ = ["AsyncZooClient", "ClientError", "ModelInfo", "Prediction", "ZooClient"]
