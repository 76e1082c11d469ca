#!/usr/bin/env bash
# GPU readiness check (about 5-8 minutes on one recent NVIDIA GPU): the GPU tests, the device-parametrised tests
# on cuda, ms per Adam iteration of both neural schemes at the image setting on the GPU, and a slice of the
# paper profile (the Sec. 6.1 interaction benchmark at the paper's settings, d = 2, r = 1, both neural schemes).
#   scripts/gpu_check.sh [python]        (default python: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PYEOF'
import torch, sys
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible: this script checks the GPU paths")
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PYEOF
echo "== GPU tests and device-parametrised tests on cuda"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_neural.py tests/test_runners.py \
  tests/test_fast_paths.py -k "cuda or gpu or explicit" -x
echo "== ms per Adam iteration at the image setting (2000 particles, 2000 targets, B = 2000, 128 x 5), GPU"
timeout 150 "$PY" benchmarks/bench_neural.py --device cuda --only image --library-only --repeats 3
echo "== paper-profile slice: Sec. 6.1 at the paper's settings, d = 2, r = 1 (24 steps x 5000 iterations)"
out=$(mktemp -d)
timeout 300 "$PY" benchmarks/bench_interaction.py --profile paper --device cuda --dims 2 --rs 1 \
  --schemes neural_backward neural_forward --out "$out/interaction_gpu.json" --checkpoint-root "$out/ckpt"
