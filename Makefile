# mrv-agent. Every target is one or two lines that call go or a hack/ script.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO ?= go
DURATION ?= 30s
FUZZTIME ?= 30s

.PHONY: all build build-all test test-integration demo lint bench fuzz tidy-check clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mrv-agent ./cmd/mrv-agent

# Static binaries for the gateways: linux/amd64, linux/arm64 and linux/arm (GOARM=7).
build-all:
	hack/build-all.sh "$(LDFLAGS)"

# Hermetic: in-process Modbus server, embedded MQTT broker, subprocess agents on loopback.
test:
	$(GO) test -race ./...

# Suites that need real Mosquitto or node-opcua (installed by .ci/run).
test-integration:
	$(GO) test -race -tags integration -run Integration ./...

demo:
	$(GO) run ./cmd/mrv-agent demo --duration $(DURATION)

lint:
	$(GO) vet ./...
	$(GO) tool -modfile=hack/tools/go.mod golangci-lint run --build-tags integration ./...

# Go benchmarks of the hot paths (seal, buffer commit, encode, verify).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./reading ./seal ./buffer ./verify ./cmd/mrv-agent

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeBlock -fuzztime $(FUZZTIME) ./reading

tidy-check:
	$(GO) mod tidy && git diff --exit-code -- go.mod go.sum

clean:
	rm -rf bin dist
