"""The torch side: the MLP, the training loop, optimizers, checkpoints, distributed training and the ONNX export."""
