#!/usr/bin/env bash
# Every GPU check of issue 9 in one command, on a fresh machine with a CUDA GPU and this
# repository: a virtual environment, the install the README gives, the CUDA tests, the
# quickstart on the GPU (trained checkpoints for the benchmarks), then one table:
# `ridgeline bench` on the quickstart pipeline, weight matching (new on the GPU vs the
# pre-issue-9 implementation on the CPU), and path evaluation by points_per_batch and
# precision. The rows are also written to gpu-results.json (for docs/performance.md).
#
#   bash benchmarks/gpu.sh            # VENV=... to choose the environment's folder
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-gpu}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet torch==2.14.1 torchvision==0.29.1 -e ".[dev]"
"$VENV/bin/python" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device (driver or wheel mismatch?); nothing to measure")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY
# the quickstart's trained pair, so `ridgeline bench` measures trained states
"$VENV/bin/ridgeline" run examples/quickstart.toml --device cuda --output ridgeline-gpu/quickstart.h5 --quiet > /dev/null
"$VENV/bin/python" benchmarks/gpu_report.py --device cuda --out gpu-results.json
