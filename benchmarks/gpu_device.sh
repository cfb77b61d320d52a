#!/usr/bin/env bash
# On the lent GPU machine, from the repository's root, with .whl carried (benchmarks/gpu_wheels.py
# made it here): installs the carried wheels beside the image's PyTorch, imports this package from
# the checkout (.import-path, no install), and runs benchmarks/gpu_check.py with the arguments
# given. Its table and log land in $OUT (the device tool brings them back).
set -euo pipefail
out="${OUT:-/tmp/gpu_check}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD/.import-path" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$out/gpu.txt" || true
python3 benchmarks/gpu_check.py --out "$out/gpu_check.txt" "$@" 2>&1 | tee "$out/gpu_check.log"
