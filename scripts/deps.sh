#!/usr/bin/env bash
# Install the Debian 12 packages preshift builds and tests with.
# Usage: scripts/deps.sh [extra packages...]
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev zlib1g-dev gzip
  libmsgpack-dev libnng-dev libsqlite3-dev clang libclang-rt-dev gnuplot-nox "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
