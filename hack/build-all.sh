#!/usr/bin/env bash
# Static, stripped binaries for the gateway platforms, and their sizes.
set -euo pipefail
ldflags=${1:-"-s -w"}
mkdir -p dist
for target in linux/amd64 linux/arm64 linux/arm/7; do
	IFS=/ read -r os arch arm <<<"$target"
	out="dist/mrv-agent-$os-$arch${arm:+v$arm}"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=${arm:-} go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/mrv-agent
	printf '%-32s %s bytes\n' "$out" "$(stat -c %s "$out")"
done
