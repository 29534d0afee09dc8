#!/usr/bin/env bash
# Installs what ansible-worker needs to run and to be tested, skipping what is
# already there: ansible-core, python3-ansible-runner, mosquitto (+ clients),
# git from Debian's packages (and systemd, for systemd-analyze, to test the
# example unit, and chromium, to test the live page); the nats CLI and
# staticcheck with go install.
# Usage: scripts/deps.sh [run|test]   (run: only what the worker needs)
set -euo pipefail
mode=${1:-test}
export PATH="$PATH:$(go env GOPATH)/bin"

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi

need=()
command -v ansible-playbook >/dev/null || need+=(ansible-core)
command -v git >/dev/null || need+=(git)
if [ "$mode" = test ]; then
  [ -x /usr/bin/ansible-runner ] || need+=(python3-ansible-runner)
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
  command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
  # It needs no running systemd (test/service_test.go).
  command -v systemd-analyze >/dev/null || need+=(systemd)
  # Headless, for the browser test of the live page (test/web_test.go).
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "$mode" = test ]; then
  command -v nats >/dev/null || { echo "deps: installing the nats CLI" >&2; go install github.com/nats-io/natscli/nats@v0.5.1; }
  command -v staticcheck >/dev/null || { echo "deps: installing staticcheck" >&2; go install honnef.co/go/tools/cmd/staticcheck@v0.8.2; }
fi
