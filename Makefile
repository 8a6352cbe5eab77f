GO ?= go
BIN := bin/ringtrain
# What `ringtrain --version` prints: git describe of the work tree and the commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# pinned; `go run` fetches it through the module proxy on first use
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test bench fuzz demo proto proto-check fmt vet lint clean docker compose-up compose-down

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ringtrain

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$bad" ]; then echo "not gofmt-formatted:"; echo "$$bad"; exit 1; fi
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags noasm ./model/... ./allreduce/...

test: lint vet
	$(GO) test -race -timeout 30m ./...
	$(GO) test -tags noasm -timeout 20m ./model/... ./allreduce/...

# Every reader of untrusted bytes has a fuzz target (seeds in testdata/fuzz run
# in every go test); `make fuzz` runs each for FUZZTIME inputs. A count, not a
# duration: Go 1.26's fuzz coordinator can fail a target with a spurious
# "context deadline exceeded" when a duration runs out (golang/go#75804).
FUZZTIME ?= 8000x
FUZZ_TARGETS := model:FuzzParseSafetensors model:FuzzReadModel model:FuzzReadShardedIndex \
	hf:FuzzParseConfig job:FuzzParse tokenizer:FuzzLoad tokenizer:FuzzTokenizerJSON shard:FuzzOpen \
	allreduce:FuzzCodecUnmarshal

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t ($(FUZZTIME))"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x ./$${t%%:*} 2>&1) || { echo "$$out"; exit 1; }; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./model/... ./allreduce/... ./tokenizer/... ./shard/...

demo: build
	./scripts/demo.sh

clean:
	rm -rf bin

docker:
	./deploy/build.sh

proto:
	./scripts/genproto.sh

proto-check:
	./scripts/genproto.sh --check

WORKERS ?= 3

# A compose cluster of WORKERS workers on the demo data (deploy/compose.yaml).
compose-up: build
	./deploy/build.sh
	./deploy/prepare.sh
	./deploy/compose.sh up -d --scale worker=$(WORKERS)
	@echo "status: ./bin/ringtrain status --coordinator localhost:7070"

compose-down:
	./deploy/compose.sh down -v --remove-orphans
