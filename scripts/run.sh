#!/usr/bin/env bash
# Runs the product on this machine: an embedded NATS server (JetStream on
# ./data, client port 127.0.0.1:4222, MQTT 127.0.0.1:1883) and one worker of
# group "production" serving examples/playbooks. Submit with `nats pub`,
# `mosquitto_pub` or `ansible-worker submit` (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
# The first compile takes a while and says nothing: tell the user why they wait.
echo "building ansible-worker…" >&2
exec go run ./cmd/ansible-worker -c examples/config.yaml "$@"
