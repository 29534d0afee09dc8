#!/usr/bin/env bash
# Runs the benchmark suite (cmd/ansible-worker-bench, package bench): the
# worker against raw ansible-playbook and ansible-runner (one-task playbook,
# 1000-item loop), dispatch latency, throughput and memory, in one run of
# under 10 minutes, and prints one table. BENCHMARKS.md explains each figure.
#
# Usage: scripts/bench.sh [-rounds N] [-quick] [-only playbook,loop,dispatch,throughput,memory] [-bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
# ansible-core and ansible-runner, the two the worker is compared with.
scripts/deps.sh test >&2
exec go run ./cmd/ansible-worker-bench "$@"
