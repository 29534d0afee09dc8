#!/usr/bin/env bash
# The soak (test/soak_test.go, build tag soak): an embedded nats-server and
# two workers (concurrency 2 each) run a steady stream of short tasks with
# failures, timeouts and cancels mixed in for AW_SOAK_DURATION (default 10m).
# It fails when a task is lost or ends in the wrong state, or when a worker's
# memory, goroutines or open files grow from the second minute to the last.
# The figures are logged; AW_SOAK_REPORT=FILE also writes them there, in
# markdown. AW_TEST_WARM_START=false runs the workers with warm starts off.
#
# Usage: [AW_SOAK_DURATION=10m] [AW_SOAK_REPORT=/tmp/soak.md] scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
export PATH="$PATH:$(go env GOPATH)/bin"
export AW_SOAK_DURATION="${AW_SOAK_DURATION:-10m}"
exec go test -tags soak -count=1 -run '^TestSoak$' -timeout 30m -v ./test/
