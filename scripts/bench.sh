#!/usr/bin/env bash
# Measures ansible-worker's overhead against running ansible-playbook directly.
#
# Builds the binary, starts a worker with its own embedded NATS server on a
# free loopback port (temporary store and data directories), then times, in
# alternating order, N pairs of
#   (a) ansible-playbook -i inventory/hosts PLAYBOOK          (in examples/playbooks)
#   (b) ansible-worker submit --wait --quiet -p PLAYBOOK -i inventory/hosts
# and prints each pair, the medians, the median ratio worker/direct and the
# absolute overhead. It reports; it does not gate: it exits 0 whenever every
# run succeeded, and prints TARGET MET when the median ratio is <= 1.05.
#
# Usage: scripts/bench.sh [PAIRS]
#   BENCH_PAIRS      pairs to time (default 21; the first argument wins)
#   BENCH_PLAYBOOK   playbook relative to examples/playbooks (default hello.yml)
#   BENCH_INVENTORY  inventory relative to examples/playbooks (default inventory/hosts)
#   BENCH_LOG_LEVEL  worker log level (default INFO); the log is printed with
#                    BENCH_SHOW_LOG=1
#   BENCH_TARGET     the ratio to meet (default 1.05)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

pairs=${1:-${BENCH_PAIRS:-21}}
playbook=${BENCH_PLAYBOOK:-hello.yml}
inventory=${BENCH_INVENTORY:-inventory/hosts}
log_level=${BENCH_LOG_LEVEL:-INFO}
target=${BENCH_TARGET:-1.05}
pbdir=$root/examples/playbooks
if ! [[ $pairs =~ ^[1-9][0-9]*$ ]]; then
  echo "bench: PAIRS must be a positive integer, not '$pairs'" >&2
  exit 2
fi
[ -f "$pbdir/$playbook" ] || { echo "bench: no playbook $pbdir/$playbook" >&2; exit 2; }
ansible_playbook=$(command -v ansible-playbook) || { echo "bench: ansible-playbook not on PATH (scripts/deps.sh run)" >&2; exit 2; }
# The system python3 for timing when there is one (python3 on PATH may be a
# pyenv shim, which changes PATH for its children); any python3 will do.
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
# Our own configuration only, never one from the environment or the cwd.
unset ANSIBLE_WORKER_CONFIG RUNNER_MAX_OUTSTANDING_PINGS
for v in $(compgen -v RUNNER_NATS_ || true); do unset "$v"; done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ansible-worker-bench.XXXXXX")
worker_pid=""
driver_pid=""
cleanup() {
  local rc=$?
  if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
    kill -TERM "$driver_pid" 2>/dev/null || true
    wait "$driver_pid" 2>/dev/null || true
  fi
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
  if [ "${BENCH_SHOW_LOG:-0}" = 1 ] && [ -f "$tmp/worker.log" ]; then
    echo "---- worker log ----" >&2
    cat "$tmp/worker.log" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "bench: building ansible-worker" >&2
go build -o "$tmp/ansible-worker" ./cmd/ansible-worker
bin=$tmp/ansible-worker

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Start the worker; a port taken between free_port and the bind is retried.
port=""
for try in 1 2 3; do
  port=$(free_port)
  rm -rf "$tmp/store" "$tmp/data"
  cat >"$tmp/config.yaml" <<EOF
log_level: $log_level
worker:
  playbook_directory: $pbdir
  data_dir: $tmp/data
nats:
  embedded:
    enabled: true
    listen: 127.0.0.1:$port
    store_dir: $tmp/store
EOF
  "$bin" run -c "$tmp/config.yaml" 2>"$tmp/worker.log" &
  worker_pid=$!
  started=""
  for _ in $(seq 1 300); do
    if grep -q "worker started" "$tmp/worker.log"; then started=1; break; fi
    kill -0 "$worker_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$started" ] && break
  echo "bench: the worker did not start (try $try, port $port):" >&2
  cat "$tmp/worker.log" >&2
  kill -TERM "$worker_pid" 2>/dev/null || true
  wait "$worker_pid" 2>/dev/null || true
  worker_pid=""
done
[ -n "$worker_pid" ] || { echo "bench: giving up" >&2; exit 1; }
echo "bench: worker pid $worker_pid on nats://127.0.0.1:$port, playbook $playbook, $pairs pairs" >&2

# The timing loop runs in one python3 process (time.perf_counter, a
# monotonic clock) so that no helper process starts inside a measurement.
# Both commands run from the playbook directory with the caller's own
# environment. It runs in the background so that a signal reaches the
# traps at once; it stops its current command when it gets SIGTERM.
export BENCH_ENV_PATH=$PATH
"$py" - "$pairs" "$target" "$pbdir" "$tmp" \
  "$ansible_playbook" -i "$inventory" "$playbook" -- \
  "$bin" submit -s "nats://127.0.0.1:$port" --wait --quiet -p "$playbook" -i "$inventory" <<'PY' &
import os, signal, statistics, subprocess, sys, time

def stop(signum, frame):
    raise SystemExit(128 + signum)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

pairs, target, cwd, tmp = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
rest = sys.argv[5:]
sep = rest.index("--")
direct, worker = rest[:sep], rest[sep + 1:]
env = dict(os.environ)
env["PATH"] = env.pop("BENCH_ENV_PATH")

def run(what, argv):
    errf = os.path.join(tmp, what + ".err")
    with open(errf, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
        try:
            rc = p.wait()
        finally:
            if p.poll() is None:
                p.terminate()
                p.wait()
        t1 = time.perf_counter()
    if rc != 0:
        sys.stderr.write("bench: %s run failed with exit code %d: %s\n" % (what, rc, " ".join(argv)))
        sys.stderr.write(open(errf, errors="replace").read())
        sys.exit(1)
    return t1 - t0

# Warm-up: page cache, Python bytecode caches, the worker's first task.
run("direct", direct)
run("worker", worker)

rows = []
print("%4s  %9s  %9s  %6s" % ("pair", "direct s", "worker s", "ratio"))
for i in range(1, pairs + 1):
    if i % 2 == 1:
        d = run("direct", direct)
        w = run("worker", worker)
    else:
        w = run("worker", worker)
        d = run("direct", direct)
    rows.append((d, w, w / d))
    print("%4d  %9.3f  %9.3f  %6.3f" % (i, d, w, w / d), flush=True)

md = statistics.median(r[0] for r in rows)
mw = statistics.median(r[1] for r in rows)
mr = statistics.median(r[2] for r in rows)
print("median direct   %.3f s" % md)
print("median worker   %.3f s" % mw)
print("median ratio    %.3f" % mr)
print("overhead        %.0f ms (median worker - median direct)" % ((mw - md) * 1000))
# Minima are the least disturbed by other load on the machine.
nd, nw = min(r[0] for r in rows), min(r[1] for r in rows)
print("fastest         direct %.3f s, worker %.3f s: %.0f ms apart, ratio %.3f" % (nd, nw, (nw - nd) * 1000, nw / nd))
if mr <= target:
    print("TARGET MET (median ratio %.3f <= %.2f)" % (mr, target))
else:
    print("TARGET MISSED (<= %.2f)" % target)
PY
driver_pid=$!
wait "$driver_pid"
