"""Run stock tritonclient.grpc against a server; prints a JSON report (a separate process: see zoo/proto)."""

import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient

url, model, n_features = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = grpcclient.InferenceServerClient(url)
md = client.get_model_metadata(model, as_json=True)
cfg = client.get_model_config(model, as_json=True)
x = np.linspace(-1, 1, 3 * n_features, dtype=np.float32).reshape(3, n_features)
inp = grpcclient.InferInput("input", list(x.shape), "FP32")
inp.set_data_from_numpy(x)
result = client.infer(model, [inp], outputs=[grpcclient.InferRequestedOutput("probabilities"), grpcclient.InferRequestedOutput("label")])
try:
    client.infer("no-such-model", [inp])
    not_found = None
except grpcclient.InferenceServerException as e:
    not_found = e.status()
print(json.dumps({
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready(model),
    "metadata": md,
    "config": cfg,
    "x": x.tolist(),
    "probabilities": result.as_numpy("probabilities").tolist(),
    "label": result.as_numpy("label").tolist(),
    "not_found": not_found,
}))
