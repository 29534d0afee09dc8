#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/deps.sh), checks
# formatting, vet and staticcheck, runs every test against real parts
# (embedded nats-server, ansible-playbook, ansible-runner, the nats CLI,
# mosquitto, systemd-analyze), then runs each fuzz target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
export PATH="$PATH:$(go env GOPATH)/bin"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
staticcheck ./...
# The client commands build for macOS; Linux-only process control is behind build tags.
GOOS=darwin go build -o /dev/null ./cmd/...
GOOS=windows go vet ./...
# The end-to-end package alone: on 2 cores, packages run side by side would
# slow Ansible's start enough to upset the tests that time it.
go test -count=1 -timeout 15m "$@" $(go list ./... | grep -v '/test$')
go test -count=1 -timeout 15m "$@" ./test
# The end-to-end tests again with warm starts off (worker.warm_start: false):
# both ways of starting a playbook pass the same suite. The cluster, chaos,
# provisioning and browser tests are about NATS and the page, not how a
# playbook starts: they run once, above, to keep the suite near 15 minutes.
AW_TEST_WARM_START=false go test -count=1 -timeout 15m -skip 'TestChaos|TestCluster|TestEmbeddedCluster|TestProvision|TestLivePage' "$@" ./test
# Counts of runs, not durations: with a -fuzztime duration, Go 1.26's fuzz
# coordinator can fail a clean run with "context deadline exceeded"
# (go.dev/issue/75804, fixed in Go 1.27). Each count is about 5 s here;
# FUZZTIME (e.g. 60s or 500000x) overrides them all. Minimizing a new
# input is kept short so it does not stretch a run.
for target in schemas:FuzzParseTaskRequest:100000x schemas:FuzzParseRequest:30000x schemas:FuzzJobResponse:20000x config:FuzzLoadConfig:4000x worker:FuzzTaskIsData:100000x runnerstream:FuzzReader:1500x runnerstream:FuzzCmdline:25000x; do
  IFS=: read -r pkg fn count <<<"$target"
  go test -run '^$' -fuzz "^${fn}\$" -fuzztime "${FUZZTIME:-$count}" -fuzzminimizetime 2s "./$pkg"
done
echo "all checks passed"
