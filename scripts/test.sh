#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/deps.sh), checks
# formatting, vet and staticcheck, runs every test against real parts
# (embedded nats-server, ansible-playbook, ansible-runner, the nats CLI,
# mosquitto), then runs each fuzz target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
export PATH="$PATH:$(go env GOPATH)/bin"
fuzztime=${FUZZTIME:-10s}

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
for target in schemas:FuzzParseTaskRequest config:FuzzLoadConfig worker:FuzzTaskIsData; do
  pkg=${target%%:*}; fn=${target##*:}
  # A short minimization: one cut off by -fuzztime fails the run.
  go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "./$pkg"
done
echo "all checks passed"
