#!/usr/bin/env bash
# Install what preshift needs (Debian packages) and build it, Release, into
# build/: the demo scripts' first step. The binary is build/server/preshift.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
