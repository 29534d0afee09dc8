package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// provisionAssets are the assets `provision` reports for group production,
// in order.
var provisionAssets = []string{"stream ANSIBLE_TASKS", "stream ANSIBLE_EVENTS", "stream ANSIBLE_RESPONSES",
	"bucket ansible_status", "bucket ansible_claims", "object store ansible_jobs", "consumer ansible-worker-production"}

// provisionLines is what `provision` prints when format (with %s for the
// asset) is the line of every asset.
func provisionLines(format string) string {
	var out strings.Builder
	for _, a := range provisionAssets {
		fmt.Fprintf(&out, format+"\n", a)
	}
	return out.String()
}

// `provision` creates everything once (a dry run first changes nothing),
// then finds it unchanged, in both places -c may go. A worker whose
// configuration contradicts what is on the server refuses to start, naming
// the difference and the command that changes it; after that command, it
// starts and runs tasks.
func TestProvisionCommand(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	cfg := writeConfig(t, ns.url, workerOpts{NATSExtra: "events_max_age: 3600"})

	out, errOut, code := runCLI(t, "provision", "-c", cfg, "--dry-run")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, provisionLines("would create %s (replicas 1)"), out)
	c := connectClient(t, ns.url)
	_, err := c.js.Stream(context.Background(), "ANSIBLE_TASKS")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "a dry run creates nothing")

	out, errOut, code = runCLI(t, "provision", "-c", cfg)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, provisionLines("created %s (replicas 1)"), out)
	out, errOut, code = runCLI(t, "-c", cfg, "provision")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, provisionLines("unchanged %s"), out)

	longer := workerOpts{NATSExtra: "events_max_age: 7200"}
	other := writeConfig(t, ns.url, longer)
	_, errOut, code = runCLI(t, "run", "-c", other)
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "stream ANSIBLE_EVENTS: max_age is 1h0m0s on the server, nats.events_max_age says 2h0m0s\n")
	require.Contains(t, errOut, "stream ANSIBLE_RESPONSES: max_age is 1h0m0s on the server, nats.events_max_age says 2h0m0s\n")
	require.Contains(t, errOut, fmt.Sprintf("run %q to change them", "ansible-worker provision -c "+other))

	out, errOut, code = runCLI(t, "provision", "-c", other)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "updated stream ANSIBLE_EVENTS: max_age 1h0m0s → 2h0m0s\n")
	require.Contains(t, out, "updated stream ANSIBLE_RESPONSES: max_age 1h0m0s → 2h0m0s\n")
	require.Contains(t, out, "unchanged consumer ansible-worker-production\n")
	startWorker(t, ns.url, longer)
	_, errOut, code = runCLI(t, "submit", "-c", other, "--task-id", "after-provision", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, schemas.StateSuccess, c.waitFinal(t, "production", "after-provision", time.Minute).State)
}

// One worker on an empty server creates everything (the one-machine
// default stays one command): provision then finds nothing to change.
func TestProvisionAfterFirstWorker(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{Extra: "allow_runner_jobs: true"})
	out, errOut, code := runCLI(t, "provision", "-c", writeConfig(t, ns.url, workerOpts{}))
	require.Equal(t, 0, code, errOut)
	require.Equal(t, provisionLines("unchanged %s"), out)
}

// With the embedded server and its worker stopped, provision runs the
// embedded server itself; with the worker running, it uses the worker's.
func TestProvisionEmbedded(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	opts := workerOpts{NATSExtra: fmt.Sprintf("status_ttl: 86400\nembedded:\n  enabled: true\n  listen: 127.0.0.1:%d\n  store_dir: %s",
		port, t.TempDir())}
	cfg := writeConfig(t, url, opts)

	out, errOut, code := runCLI(t, "provision", "-c", cfg)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, provisionLines("created %s (replicas 1)"), out)
	require.Contains(t, errOut, "the embedded server runs for the time of the command")

	startWorker(t, url, opts)
	out, errOut, code = runCLI(t, "provision", "-c", cfg)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, provisionLines("unchanged %s"), out)
	require.NotContains(t, errOut, "embedded server")
}

// On a three-server cluster whose assets have one replica, a worker with
// nats.replicas 3 refuses to start; provision moves every stream, bucket
// and the object store to three servers, and the group's consumer follows
// its stream; then the worker starts.
func TestProvisionScalesOnACluster(t *testing.T) {
	t.Parallel()
	cl := startCluster(t)
	url := cl.url()
	out, errOut, code := runCLI(t, "provision", "-c", writeConfig(t, url, workerOpts{}))
	require.Equal(t, 0, code, errOut)
	require.Equal(t, provisionLines("created %s (replicas 1)"), out)

	three := workerOpts{NATSExtra: "replicas: 3", Extra: "allow_runner_jobs: true"}
	cfg := writeConfig(t, url, three)
	_, errOut, code = runCLI(t, "run", "-c", cfg)
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "stream ANSIBLE_TASKS: replicas is 1 on the server, nats.replicas says 3\n")
	require.Contains(t, errOut, "object store ansible_jobs: replicas is 1 on the server, nats.replicas says 3\n")

	out, errOut, code = runCLI(t, "provision", "-c", cfg)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, strings.Replace(provisionLines("updated %s: replicas 1 → 3"),
		"updated consumer ansible-worker-production: replicas 1 → 3", "unchanged consumer ansible-worker-production", 1), out,
		"the consumer of a work queue has its stream's replicas")
	c := connectClient(t, url)
	checkFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		cons, err := c.js.Consumer(context.Background(), "ANSIBLE_TASKS", "ansible-worker-production")
		if err != nil {
			return err
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		return replicated("consumer", info.Cluster)
	})
	startWorker(t, url, three)
}
