#!/usr/bin/env bash
# Builds the static ringtrain binary and the image ringtrain:local from it.
set -euo pipefail
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build -o deploy/ringtrain ./cmd/ringtrain
docker build -t ringtrain:local deploy
rm -f deploy/ringtrain
