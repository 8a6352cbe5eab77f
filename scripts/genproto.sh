#!/usr/bin/env bash
# Regenerates the Go code of every proto/*.proto into proto/ (package
# ringtrainpb), one protoc run per file.
#
#   scripts/genproto.sh            regenerate in place
#   scripts/genproto.sh --check    regenerate into a temporary directory and
#                                  fail if the checked-in code differs
#
# The generators are pinned so that everyone produces identical files:
#   apt-get install protobuf-compiler                                  (protoc 3.21.12, Debian bookworm)
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
set -euo pipefail

PROTOC_VERSION="3.21.12"
PROTOC_GEN_GO_VERSION="v1.36.12"
PROTOC_GEN_GO_GRPC_VERSION="1.6.2"

cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"

need() {
	echo "genproto: $1" >&2
	echo "install the pinned tools with:" >&2
	echo "  apt-get install protobuf-compiler   # protoc $PROTOC_VERSION" >&2
	echo "  go install google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION" >&2
	echo "  go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v$PROTOC_GEN_GO_GRPC_VERSION" >&2
	exit 1
}

command -v protoc >/dev/null || need "protoc not found"
command -v protoc-gen-go >/dev/null || need "protoc-gen-go not found"
command -v protoc-gen-go-grpc >/dev/null || need "protoc-gen-go-grpc not found"
got=$(protoc --version | awk '{print $2}')
[ "$got" = "$PROTOC_VERSION" ] || need "protoc is $got, want $PROTOC_VERSION"
got=$(protoc-gen-go --version | awk '{print $2}')
[ "$got" = "$PROTOC_GEN_GO_VERSION" ] || need "protoc-gen-go is $got, want $PROTOC_GEN_GO_VERSION"
got=$(protoc-gen-go-grpc --version | awk '{print $2}')
[ "$got" = "$PROTOC_GEN_GO_GRPC_VERSION" ] || need "protoc-gen-go-grpc is $got, want $PROTOC_GEN_GO_GRPC_VERSION"

check=0
if [ "${1:-}" = "--check" ]; then
	check=1
fi

out=proto
if [ $check = 1 ]; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi

shopt -s nullglob
files=(proto/*.proto)
[ ${#files[@]} -gt 0 ] || need "no proto/*.proto files"
for f in "${files[@]}"; do
	protoc -I proto \
		--go_out="$out" --go_opt=paths=source_relative \
		--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
		"$f"
done

if [ $check = 1 ]; then
	status=0
	for f in "${files[@]}"; do
		base=$(basename "$f" .proto)
		for gen in "$base.pb.go" "${base}_grpc.pb.go"; do
			[ -e "$out/$gen" ] || continue
			if ! diff -u "proto/$gen" "$out/$gen"; then
				echo "proto-check: proto/$gen is stale; run 'make proto' and commit the result" >&2
				status=1
			fi
		done
	done
	# Generated files whose .proto is gone.
	for g in proto/*.pb.go; do
		base=$(basename "$g")
		base=${base%_grpc.pb.go}
		base=${base%.pb.go}
		if [ ! -e "proto/$base.proto" ]; then
			echo "proto-check: $g has no proto/$base.proto; delete it" >&2
			status=1
		fi
	done
	exit $status
fi
