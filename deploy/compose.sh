#!/usr/bin/env bash
# Runs the compose tool with deploy/compose.yaml: the `docker compose` plugin
# if it is installed, else Debian's docker-compose.
#   deploy/compose.sh up -d --scale worker=3
set -euo pipefail
cd "$(dirname "$0")"
if docker compose version >/dev/null 2>&1; then
	exec docker compose -f compose.yaml "$@"
fi
exec docker-compose -f compose.yaml "$@"
