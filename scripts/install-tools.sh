#!/usr/bin/env bash
# Installs the pinned code generators that `make proto` and `make proto-check`
# need (protoc itself comes from Debian: apt-get install protobuf-compiler).
set -euo pipefail
go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
