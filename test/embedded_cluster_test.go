package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// embeddedClusterNodes are three cluster nodes on loopback, each with its
// plain nats-server file (server name, client, cluster and monitoring
// ports, routes to all three, JetStream store) written, none started: each
// is run by the embedded server of an ansible-worker.
func embeddedClusterNodes(t *testing.T) *natsCluster {
	t.Helper()
	cl := &natsCluster{nodes: newClusterNodes(t)}
	dir := t.TempDir()
	for _, n := range cl.nodes {
		n.conf = filepath.Join(dir, n.name+".conf")
		require.NoError(t, os.WriteFile(n.conf, []byte(cl.config(n)), 0o600))
	}
	return cl
}

// launchNode starts `ansible-worker run` as n's only process: its embedded
// server is n (nats.embedded.config_file), with replicas 3. The node's
// monitoring follows the process.
func launchNode(t *testing.T, n *clusterNode) (*workerProc, *notifySocket) {
	t.Helper()
	w, ready := launchWorker(t, n.url, workerOpts{NATSExtra: fmt.Sprintf(
		"replicas: 3\nembedded:\n  enabled: true\n  store_dir: %s\n  config_file: %s", n.storeDir, n.conf)})
	n.cmd, n.done = w.cmd, w.done
	return w, ready
}

// One `ansible-worker run` per host is a small cluster: three workers whose
// embedded servers are the nodes of a cluster, each from a plain
// nats-server file. The first waits for the others instead of failing; the
// streams, buckets and consumer get three replicas; tasks submitted through
// one node run on workers of different nodes; and after a host's clean stop
// (SIGTERM) a task submitted through another node still runs.
func TestEmbeddedCluster(t *testing.T) {
	t.Parallel()
	cl := embeddedClusterNodes(t)
	first, firstReady := launchNode(t, cl.nodes[0])
	checkFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-first.done:
			return fmt.Errorf("the first node's worker exited:\n%s", first.logs.String())
		default:
		}
		if !strings.Contains(first.logs.String(), "waits for the other nodes of its cluster") {
			return fmt.Errorf("the first node's worker does not say it waits for the cluster")
		}
		return nil
	})
	workers := []*workerProc{first}
	readies := []*notifySocket{firstReady}
	for _, n := range cl.nodes[1:] {
		w, ready := launchNode(t, n)
		workers, readies = append(workers, w), append(readies, ready)
	}
	for i, w := range workers {
		readies[i].wait(t, 30*time.Second, w.done, w.logs.String)
	}
	c := connectClient(t, cl.url())
	checkFor(t, 20*time.Second, 200*time.Millisecond, func() error { return embeddedClusterReplicated(c) })

	// Six at once, one at a time per worker: more than one worker runs them.
	for i := range 6 {
		submitThrough(t, cl.nodes[0], fmt.Sprintf("emb-cluster-%d", i))
	}
	ran := map[string]int{}
	for i := range 6 {
		ran[waitSuccess(t, c, fmt.Sprintf("emb-cluster-%d", i))]++
	}
	t.Logf("tasks by worker: %v", ran)
	require.GreaterOrEqual(t, len(ran), 2)

	first.stop(t)
	require.Equal(t, 0, first.cmd.ProcessState.ExitCode(), first.logs.String())
	submitThrough(t, cl.nodes[1], "emb-cluster-after-stop")
	require.NotEqual(t, first.id, waitSuccess(t, c, "emb-cluster-after-stop"))
}

// submitThrough submits the quick task id through node n.
func submitThrough(t *testing.T, n *clusterNode, id string) {
	t.Helper()
	_, errOut, code := runCLI(t, "submit", "-s", n.url, "--task-id", id, "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
}

// waitSuccess waits for task id of group production to succeed and
// returns the worker that ran it.
func waitSuccess(t *testing.T, c *client, id string) string {
	t.Helper()
	st := c.waitFinal(t, "production", id, 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	return st.Worker
}

// embeddedClusterReplicated checks that the tasks and events streams, the
// status bucket and the group's consumer are each on three servers.
func embeddedClusterReplicated(c *client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{jsbridge.TasksStream, jsbridge.EventsStream, "KV_" + jsbridge.StatusBucket} {
		st, err := c.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if info := st.CachedInfo(); info.Config.Replicas != 3 {
			return fmt.Errorf("stream %s: %d replicas configured", name, info.Config.Replicas)
		} else if err := replicated("stream "+name, info.Cluster); err != nil {
			return err
		}
	}
	consumer := jsbridge.Names{Prefix: "ansible", Group: "production"}.Consumer()
	cons, err := c.js.Consumer(ctx, jsbridge.TasksStream, consumer)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", consumer, err)
	}
	return replicated("consumer "+consumer, cons.CachedInfo().Cluster)
}
