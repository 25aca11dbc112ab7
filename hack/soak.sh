#!/usr/bin/env bash
# The soak: SOAK_DURATION (default 10m) of the agent as a subprocess under random faults
# (simulators, relays, Mosquitto stops and kills, agent SIGKILLs, a buffer-cap outage), on
# loopback only; then the verifier's verdict and the agent's RSS, goroutines and open fds
# (cmd/mrv-agent/soak_test.go, build tag soak). Needs mosquitto (apt-get install mosquitto).
# CI runs SOAK_DURATION=90s.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_DURATION=${SOAK_DURATION:-10m}
case $SOAK_DURATION in
*h) secs=$((${SOAK_DURATION%h} * 3600)) ;;
*m) secs=$((${SOAK_DURATION%m} * 60)) ;;
*s) secs=${SOAK_DURATION%s} ;;
*) echo "SOAK_DURATION: want e.g. 90s, 10m or 1h, got $SOAK_DURATION" >&2; exit 2 ;;
esac
# The test's own timeout: the soak, the catch-up (at most 3 min) and a margin.
go test -tags soak -run '^TestSoak$' -count=1 -v -timeout "$((secs + 600))s" ./cmd/mrv-agent
