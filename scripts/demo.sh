#!/usr/bin/env bash
# Build preshift and run its main job. For now that is the kernel benchmark:
# the batched LSTM step against OpenBLAS's sgemm and PyTorch's LSTMCell.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh python3-torch
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/server/preshift version
./build/server/preshift bench kernels "$@"
