#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for vlmkit: system packages (only those missing), npm packages,
# the native addon and the TypeScript build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(libtorch-dev libopenblas0-pthread g++ make python3 ffmpeg)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] && [ -z "${LIBTORCH:-}" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
npm ci --ignore-scripts --no-audit --no-fund
npm run build
