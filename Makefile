# mrv-agent. Every target is one or two lines that call go or a hack/ script.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO ?= go
DURATION ?= 75s
FUZZTIME ?= 30s
SOAK_DURATION ?= 10m
GOVULNCHECK ?= v1.9.0

.PHONY: all build build-gateway build-all test test-integration test-arm demo lint bench bench-go bench-full bench-modbus bench-w3 fuzz soak vulncheck tidy-check clean

all: build

# One static binary (no libc: CGO off), with the demo.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mrv-agent ./cmd/mrv-agent

# The gateway build: without the demo's simulators and embedded broker (-tags nodemo).
build-gateway:
	CGO_ENABLED=0 $(GO) build -tags nodemo -trimpath -ldflags "$(LDFLAGS)" -o bin/mrv-agent-gateway ./cmd/mrv-agent

# Static binaries for the gateways: linux/amd64, linux/arm64 and linux/arm (GOARM=7).
build-all:
	hack/build-all.sh "$(LDFLAGS)"

# Hermetic: in-process Modbus server, embedded MQTT broker, subprocess agents on loopback.
test:
	$(GO) test -race ./...

# Suites that need real Mosquitto or node-opcua (installed by .ci/run).
test-integration:
	$(GO) test -race -tags integration -run Integration ./...

# The unit tests of the pure-Go packages for the ARM gateways, under qemu-user-static
# (Debian: apt-get install qemu-user-static); -short, no -race under emulation.
ARM_PKGS ?= ./reading ./seal ./config ./emissions ./verify ./buffer ./collector/modbus
test-arm:
	GOOS=linux GOARCH=arm64 $(GO) test -short -count=1 -exec qemu-aarch64-static $(ARM_PKGS)
	GOOS=linux GOARCH=arm GOARM=7 $(GO) test -short -count=1 -exec qemu-arm-static $(ARM_PKGS)

demo:
	$(GO) run ./cmd/mrv-agent demo --duration $(DURATION)

lint:
	$(GO) vet ./...
	$(GO) tool -modfile=hack/tools/go.mod golangci-lint run --build-tags integration,soak ./...

# Go benchmarks of the hot paths (seal, buffer commit, encode, verify).
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./reading ./seal ./buffer ./verify ./cmd/mrv-agent

# Reference workloads (../shared/BENCHMARKS.md) with the agent as a subprocess, Mosquitto from
# Debian: a smoke run of W1 (25 s, 10 s outage, SIGKILL) and W3 (ingest, drain), under 5 minutes.
bench: build-gateway
	$(GO) run ./hack/bench -agent bin/mrv-agent-gateway -w w1,w3 -smoke

# W1, W2, W3 three times each, with the 30 s outage and the SIGKILL during it; writes its
# section of docs/benchmarks.md (machine, date, command, medians and ranges). About 15 minutes.
bench-full: build-gateway
	$(GO) run ./hack/bench -agent bin/mrv-agent-gateway -w w1,w2,w3 -runs 3 -doc docs/benchmarks.md

# W2's Modbus part (BENCHMARKS.md): 50 devices × 50 float32 every 200 ms through the agent
# as a subprocess to an embedded broker; 5 s warm-up + 20 s window, then it stops.
bench-modbus: build-gateway
	$(GO) run ./hack/bench/modbus -agent bin/mrv-agent-gateway

# W3-like (docs/benchmarks.md): synthetic source -> seal -> fsync'd bbolt -> Mosquitto PUBACK,
# in process; ingest, 1M-reading backlog drain, RSS over an outage (MRV_BENCH_OUTAGE, default 2m).
bench-w3:
	$(GO) test -tags integration -run '^$$' -bench BenchmarkW3 -benchtime 1x -timeout 30m ./agent

# Every fuzz target, FUZZTIME each (one `go test -fuzz` call per target; FUZZ=regexp picks).
fuzz:
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

# Kiln + pot line + Mosquitto + agent subprocess under random faults for SOAK_DURATION, then
# the verifier (with resend) over everything received; RSS, goroutines and fds must stay flat.
soak:
	SOAK_DURATION=$(SOAK_DURATION) hack/soak.sh

# Known vulnerabilities in the dependencies; needs the online vulnerability DB (not in CI).
vulncheck:
	$(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK) ./...

tidy-check:
	$(GO) mod tidy && git diff --exit-code -- go.mod go.sum

clean:
	rm -rf bin dist
