#!/usr/bin/env bash
# Builds the static ringtrain binary and the image ringtrain:local (also tagged
# ringtrain:latest, the name deploy/k8s uses) from it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
commit=$(git rev-parse HEAD 2>/dev/null || true)
CGO_ENABLED=0 go build -ldflags "-X main.version=$version -X main.commit=$commit" -o deploy/ringtrain ./cmd/ringtrain
docker build -t ringtrain:local -t ringtrain:latest deploy
rm -f deploy/ringtrain
