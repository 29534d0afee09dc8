package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// clusterWorker is a worker of group production on every node of cl
// (nats.servers lists all three), with replicas 3 and extra more YAML
// under worker:.
func clusterWorker(t testing.TB, cl *natsCluster, concurrency int, extra string, env ...string) *workerProc {
	t.Helper()
	return startWorker(t, cl.nodes[0].url, workerOpts{Concurrency: concurrency, Extra: extra,
		NATSExtra: "replicas: 3", Env: append([]string{cl.workerEnv()}, env...)})
}

// replicated checks that an asset's cluster info shows it on three
// servers: a leader and two current replicas.
func replicated(what string, ci *jetstream.ClusterInfo) error {
	switch {
	case ci == nil:
		return fmt.Errorf("%s: no cluster info", what)
	case ci.Leader == "":
		return fmt.Errorf("%s: no leader", what)
	case len(ci.Replicas) != 2:
		return fmt.Errorf("%s: %d replicas besides the leader %s, want 2", what, len(ci.Replicas), ci.Leader)
	}
	return nil
}

// With nats.replicas 3 on a three-server cluster, every stream, bucket,
// object store and the group's consumer a worker uses is kept on all three
// servers, and tasks run.
func TestClusterReplicas(t *testing.T) {
	t.Parallel()
	cl := startCluster(t)
	clusterWorker(t, cl, 1, "allow_runner_jobs: true")
	c := connectClient(t, cl.url())

	streams := []string{jsbridge.TasksStream, jsbridge.EventsStream, jsbridge.ResponsesStream,
		"KV_" + jsbridge.StatusBucket, "KV_" + jsbridge.ClaimsBucket, "OBJ_" + jsbridge.JobsBucket}
	checkFor(t, 20*time.Second, 200*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, name := range streams {
			st, err := c.js.Stream(ctx, name)
			if err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
			if info.Config.Replicas != 3 {
				return fmt.Errorf("stream %s: %d replicas configured", name, info.Config.Replicas)
			}
			if err := replicated("stream "+name, info.Cluster); err != nil {
				return err
			}
		}
		names := jsbridge.Names{Prefix: "ansible", Group: "production"}
		cons, err := c.js.Consumer(ctx, jsbridge.TasksStream, names.Consumer())
		if err != nil {
			return fmt.Errorf("consumer %s: %w", names.Consumer(), err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", names.Consumer(), err)
		}
		return replicated("consumer "+names.Consumer(), info.Cluster)
	})

	_, errOut, code := runCLI(t, "submit", "-s", cl.nodes[1].url, "--task-id", "replicated", "-p", "quick.yml",
		"-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	st := c.waitFinal(t, "production", "replicated", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
}

// A worker whose NATS server is killed (SIGKILL) while its playbook runs
// moves to another server of the cluster and carries on: the task ends
// success as its first attempt, and every event and runner status of the
// run is stored once, in order, the final status last. The killed server
// comes back, catches up, and the cluster runs the next task.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	cl := startCluster(t)
	w := clusterWorker(t, cl, 1, "")
	c := connectClient(t, cl.url())

	_, errOut, code := runCLI(t, "submit", "-s", cl.nodes[0].url, "--task-id", "failover", "-p", "ticks.yml", "-i",
		"inventory/hosts")
	require.Equal(t, 0, code, errOut)
	c.waitRunning(t, "production", "failover")
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := len(events(clusterRunnerMessages(t, c, "failover"))); n < 4 {
			return fmt.Errorf("%d events so far", n)
		}
		return nil
	})
	victim, err := cl.nodeOf(workerConn(w))
	require.NoError(t, err)
	victim.kill()
	t.Logf("killed %s, the server of worker %s", victim.name, w.id)

	// The worker moves to another server while the playbook goes on.
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		n, err := cl.nodeOf(workerConn(w))
		if err != nil {
			return err
		}
		if n == victim {
			return fmt.Errorf("still on %s", n.name)
		}
		return nil
	})
	st := c.waitFinal(t, "production", "failover", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	require.Equal(t, 1, st.Attempt, "the same delivery carried on")
	requireCompleteRun(t, clusterRunnerMessages(t, c, "failover"), []string{"Tick", "Done"}, 12)

	// Back, caught up, and serving: a task submitted through it runs.
	cl.restart(t, victim)
	_, errOut, code = runCLI(t, "submit", "-s", victim.url, "--task-id", "after-failover", "-p", "quick.yml", "-i",
		"inventory/hosts", "--wait")
	require.Equal(t, 0, code, errOut)
	requireCaughtUp(t, c, victim, jsbridge.EventsStream)
	select {
	case <-w.done:
		t.Fatal("worker exited")
	default:
	}
}

// requireCompleteRun checks the stored messages of one successful run:
// events numbered 1..n without gap or repeat, from playbook_on_start to
// playbook_on_stats, the playbook's tasks in order with items loop items,
// and the runner statuses starting, running, successful, the last message.
func requireCompleteRun(t testing.TB, msgs []runnerMsg, tasks []string, items int) {
	t.Helper()
	evs := events(msgs)
	require.NotEmpty(t, evs)
	for i, ev := range evs {
		require.Equal(t, i+1, ev.Counter, "events in order, none missing, none twice")
	}
	require.Equal(t, "playbook_on_start", evs[0].Event)
	require.Equal(t, "playbook_on_stats", evs[len(evs)-1].Event)
	require.Equal(t, tasks, taskStarts(t, evs))
	n := 0
	for _, ev := range evs {
		if ev.Event == "runner_item_on_ok" {
			n++
		}
	}
	require.Equal(t, items, n, "every item event")
	var statuses []string
	for _, m := range msgs {
		if m.Status != nil {
			statuses = append(statuses, m.Status.Status)
		}
	}
	require.Equal(t, []string{"starting", "running", "successful"}, statuses)
	require.NotNil(t, msgs[len(msgs)-1].Status, "the final runner status comes last")
}

// requireCaughtUp waits until node's own copy of stream holds what the
// stream's leader holds.
func requireCaughtUp(t testing.TB, c *client, node *clusterNode, stream string) {
	t.Helper()
	checkFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := c.js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		local, err := node.streamState(stream)
		if err != nil {
			return err
		}
		if local.LastSeq != info.State.LastSeq || local.Msgs != info.State.Msgs {
			return fmt.Errorf("%s holds %s up to %d (%d messages), the leader up to %d (%d)", node.name, stream,
				local.LastSeq, local.Msgs, info.State.LastSeq, info.State.Msgs)
		}
		return nil
	})
}
