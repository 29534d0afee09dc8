package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	awclient "github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// chaosTasks is how many tasks the chaos test submits.
const chaosTasks = 60

// chaosRun is one chaos test: its cluster, workers (by label, which each
// worker's playbooks write in their record), and where the records are.
type chaosRun struct {
	cl      *natsCluster
	c       *client
	workers map[string]*workerProc
	records string
}

// record is what the playbook wrote for task id, one "start W" or "end W"
// line a run.
func (r *chaosRun) record(t testing.TB, id string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.records, id))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.FieldsFunc(string(b), func(c rune) bool { return c == '\n' })
}

// chaosID is the id of the i-th task.
func chaosID(i int) string { return fmt.Sprintf("chaos-%02d", i) }

// The acceptance test of a cluster deployment. Three nats-servers in a
// cluster (replicas 3), three workers listing all three servers, 60 short
// tasks. While they run, one server (the leader of the group's consumer
// and of the status and claims buckets, so they all must move) is killed
// with SIGKILL; while it is away,
// one worker is killed in the middle of a playbook; then the server comes
// back. Every task ends success, none is lost, and none runs twice, but
// for the tasks of the killed worker: those run at most twice, and are
// completed by another worker as attempt 2. The server that came back
// holds everything the others hold.
//
// worker.ack_wait stays at its default (30 s): a task must outlive the
// consumer's leader election (up to about 10 s) plus the time between two
// heartbeats (a third of ack_wait), or the new leader hands it to a second
// worker while the first still runs it. With 5 s, tasks do run twice.
func TestChaos(t *testing.T) {
	t.Parallel()
	r := &chaosRun{cl: startCluster(t), workers: map[string]*workerProc{}, records: t.TempDir()}
	for _, label := range []string{"a", "b", "c"} {
		r.workers[label] = clusterWorker(t, r.cl, 2, "", "AW_CHAOS_WORKER="+label)
	}
	r.c = connectClient(t, r.cl.url())
	start := time.Now()
	r.submitAll(t)

	r.waitFinished(t, 6, 60*time.Second)
	node := r.killLeader(t)
	cut := r.killWorkerMidRun(t, "c")
	r.cl.restart(t, node)
	t.Logf("%s back after %s", node.name, time.Since(start).Round(time.Millisecond))

	final := r.waitAllFinal(t, 90*time.Second)
	t.Logf("all %d tasks final after %s", chaosTasks, time.Since(start).Round(time.Millisecond))
	r.checkRuns(t, final, cut, "c")
	waitQueueEmpty(t, node.url)
	for _, stream := range []string{jsbridge.EventsStream, "KV_" + jsbridge.StatusBucket} {
		requireCaughtUp(t, r.c, node, stream)
	}
}

// submitAll submits the chaos tasks with the client library (Nats-Msg-Id:
// the task id).
func (r *chaosRun) submitAll(t testing.TB) {
	t.Helper()
	cl, err := awclient.New(r.c.nc, jsbridge.Names{Prefix: "ansible", Group: "production"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range chaosTasks {
		id := chaosID(i)
		_, err := cl.Submit(ctx, schemas.TaskRequest{TaskID: id, Playbook: "chaos.yml", Inventory: "inventory/hosts",
			ExtraVars: map[string]any{"record": filepath.Join(r.records, id)}})
		require.NoError(t, err, "submit %s", id)
	}
}

// killWorkerMidRun waits until worker label is in the middle of a playbook
// (its start recorded, its end not yet), kills it with SIGKILL and returns the tasks it had: those it left in the
// middle and those its status shows running on it.
func (r *chaosRun) killWorkerMidRun(t testing.TB, label string) []string {
	t.Helper()
	checkFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		if len(r.midRun(t, label)) == 0 {
			return fmt.Errorf("worker %s runs no playbook right now", label)
		}
		return nil
	})
	w := r.workers[label]
	w.kill()
	// Its playbooks died with it (the supervisor): the records are final.
	cut := r.midRun(t, label)
	require.NotEmpty(t, cut, "the playbook ended before the kill")
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		for i := range chaosTasks {
			st, err := r.c.status("production", chaosID(i))
			if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return err
			}
			if err == nil && st.State == schemas.StateRunning && st.Worker == w.id && !slices.Contains(cut, chaosID(i)) {
				cut = append(cut, chaosID(i))
			}
		}
		return nil
	})
	t.Logf("killed worker %s (%s) while it had %v", label, w.id, cut)
	return cut
}

// midRun is the tasks whose playbook worker label started and did not end.
func (r *chaosRun) midRun(t testing.TB, label string) []string {
	t.Helper()
	var out []string
	for i := range chaosTasks {
		rec := r.record(t, chaosID(i))
		if slices.Contains(rec, "start "+label) && !slices.Contains(rec, "end "+label) {
			out = append(out, chaosID(i))
		}
	}
	return out
}

// killLeader kills (SIGKILL) the server that leads the group's consumer,
// after making it the leader of the status and claims buckets too: the
// queue and the statuses must move at once, while tasks run and end. The
// events stream is led from another server: were it to die with the rest,
// the publishing of a run's last events would hold its final status back
// until the buckets had a new leader. It returns the killed server.
func (r *chaosRun) killLeader(t testing.TB) *clusterNode {
	t.Helper()
	var leader string
	eventually(t, 20*time.Second, func(tb testing.TB) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := r.c.js.Consumer(ctx, jsbridge.TasksStream, jsbridge.Names{Group: "production"}.Consumer())
		require.NoError(tb, err)
		info, err := cons.Info(ctx)
		require.NoError(tb, err)
		require.NotNil(tb, info.Cluster)
		leader = info.Cluster.Leader
		require.NotEmpty(tb, leader)
	})
	r.moveLeaders(t, leader, "KV_"+jsbridge.StatusBucket, "KV_"+jsbridge.ClaimsBucket)
	other := r.cl.nodes[0].name
	if other == leader {
		other = r.cl.nodes[1].name
	}
	r.moveLeaders(t, other, jsbridge.EventsStream)
	for _, n := range r.cl.nodes {
		if n.name == leader {
			n.kill()
			t.Logf("killed server %s, the leader of the group's consumer and of both buckets", n.name)
			return n
		}
	}
	t.Fatalf("the consumer's leader %q is none of the cluster's servers", leader)
	return nil
}

// moveLeaders makes server the leader of each stream, by asking its
// leader to step down in server's favour.
func (r *chaosRun) moveLeaders(t testing.TB, server string, streams ...string) {
	t.Helper()
	eventually(t, 30*time.Second, func(tb testing.TB) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, name := range streams {
			s, err := r.c.js.Stream(ctx, name)
			require.NoError(tb, err)
			info, err := s.Info(ctx)
			require.NoError(tb, err)
			if info.Cluster != nil && info.Cluster.Leader == server {
				continue
			}
			req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, server)
			m, err := r.c.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+name, []byte(req))
			require.NoError(tb, err)
			require.Contains(tb, string(m.Data), `"success":true`, "step-down of %s", name)
			require.Fail(tb, "moving", "%s: leader moving to %s", name, server) // checked on the next try
		}
	})
}

// finals returns the tasks that reached a final state so far.
func (r *chaosRun) finals() map[string]*schemas.TaskStatus {
	out := map[string]*schemas.TaskStatus{}
	for i := range chaosTasks {
		if st, err := r.c.status("production", chaosID(i)); err == nil && st.State.Final() {
			out[chaosID(i)] = st
		}
	}
	return out
}

// waitFinished waits until at least n tasks are final.
func (r *chaosRun) waitFinished(t testing.TB, n int, total time.Duration) {
	t.Helper()
	checkFor(t, total, 200*time.Millisecond, func() error {
		if got := len(r.finals()); got < n {
			return fmt.Errorf("%d of %d tasks final, waiting for %d", got, chaosTasks, n)
		}
		return nil
	})
}

// waitAllFinal waits until every task is final and returns their statuses.
func (r *chaosRun) waitAllFinal(t testing.TB, total time.Duration) map[string]*schemas.TaskStatus {
	t.Helper()
	var final map[string]*schemas.TaskStatus
	checkFor(t, total, 250*time.Millisecond, func() error {
		final = r.finals()
		if len(final) < chaosTasks {
			var open []string
			for i := range chaosTasks {
				if final[chaosID(i)] == nil {
					open = append(open, chaosID(i))
				}
			}
			return fmt.Errorf("%d tasks not final: %v", len(open), open)
		}
		return nil
	})
	return final
}

// checkRuns checks how each task ran. Every task ended success. A task
// the killed worker never had ran once: one start and one end in its
// record, one delivery's events and runner statuses, complete and in
// order. A task it had ran at most twice, and was completed by another
// worker as attempt 2 (and, if the killed worker had run it to its end
// before it died, by that one too). No task ran more than once on the
// surviving workers.
func (r *chaosRun) checkRuns(t testing.TB, final map[string]*schemas.TaskStatus, cut []string, victim string) {
	t.Helper()
	runs := r.taskRuns(t)
	for i := range chaosTasks {
		id := chaosID(i)
		st, rec := final[id], r.record(t, id)
		require.Equal(t, schemas.StateSuccess, st.State, "%s: %s", id, st.Err())
		var done, broken []int // deliveries that completed, that were cut short
		for attempt, msgs := range runs[id] {
			requireInOrder(t, id, attempt, msgs)
			if msgs[len(msgs)-1] == "s:successful" {
				done = append(done, attempt)
			} else {
				broken = append(broken, attempt)
			}
		}
		slices.Sort(done)
		starts, byVictim := countPrefix(rec, "start "), countPrefix(rec, "start "+victim)
		require.LessOrEqual(t, starts-byVictim, 1, "%s ran more than once on the surviving workers: %v", id, rec)
		if !slices.Contains(cut, id) {
			require.Empty(t, broken, "%s was cut short, not on the killed worker: %v", id, runs[id])
			require.Equal(t, []int{1, 1}, []int{starts, countPrefix(rec, "end ")}, "%s started and ended once: %v", id, rec)
			require.Equal(t, []int{st.Attempt}, done, "%s: one delivery ran, the one its status names", id)
			continue
		}
		require.LessOrEqual(t, starts, 2, "%s: %v", id, rec)
		require.Equal(t, 2, st.Attempt, "%s: %v", id, runs[id])
		require.NotEqual(t, r.workers[victim].id, st.Worker, id)
		require.Contains(t, done, 2, "%s completed by its second delivery: %v", id, runs[id])
		if len(done) > 1 { // the killed worker ran it to its end, and died before its status said so
			require.Equal(t, []int{1, 2}, done, "%s: %v", id, runs[id])
			require.Equal(t, 1, countPrefix(rec, "end "+victim), "%s completed twice: %v", id, rec)
		}
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// requireInOrder checks the runner messages of one delivery of a task: the
// runner statuses starting and running, events numbered 1..n, then
// successful; for a delivery cut short, a beginning of that.
func requireInOrder(t testing.TB, id string, attempt int, msgs []string) {
	t.Helper()
	want := []string{"s:starting", "s:running"}
	for n := 1; n <= countPrefix(msgs, "e"); n++ {
		want = append(want, fmt.Sprintf("e%d", n))
	}
	if msgs[len(msgs)-1] == "s:successful" {
		want = append(want, "s:successful")
	}
	require.LessOrEqual(t, len(msgs), len(want), "%s attempt %d: %v", id, attempt, msgs)
	require.Equal(t, want[:len(msgs)], msgs, "%s attempt %d: in order, none missing, none twice", id, attempt)
}

// taskRuns reads every event and runner status in ANSIBLE_EVENTS and
// returns them by task and delivery (attempt, from the Nats-Msg-Id
// <task>.<seq>.<attempt>.<kind><n>), in stream order: "e<counter>" for an
// event, "s:<status>" for a runner status.
func (r *chaosRun) taskRuns(t testing.TB) map[string]map[int][]string {
	t.Helper()
	var out map[string]map[int][]string
	eventually(t, 30*time.Second, func(tb testing.TB) {
		out = map[string]map[int][]string{}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cons, err := r.c.js.OrderedConsumer(ctx, jsbridge.EventsStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{jsbridge.RunnerPrefix + ".>"}})
		require.NoError(tb, err)
		// Fetched in batches: one pull request each, not one a message.
		for pending := uint64(1); pending > 0; {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
			require.NoError(tb, err)
			n := 0
			for m := range batch.Messages() {
				n++
				id, attempt := msgRun(tb, m)
				if out[id] == nil {
					out[id] = map[int][]string{}
				}
				out[id][attempt] = append(out[id][attempt], entry(tb, m))
				md, err := m.Metadata()
				require.NoError(tb, err)
				pending = md.NumPending
			}
			require.NoError(tb, batch.Error())
			require.NotZero(tb, n, "nothing fetched")
		}
	})
	return out
}

// msgRun is the task and delivery of a runner message, from its
// Nats-Msg-Id.
func msgRun(t testing.TB, m jetstream.Msg) (string, int) {
	parts := strings.Split(m.Headers().Get(jetstream.MsgIDHeader), ".")
	require.Len(t, parts, 4, "Nats-Msg-Id of %s", m.Subject())
	attempt, err := strconv.Atoi(parts[2])
	require.NoError(t, err)
	return parts[0], attempt
}

// entry is a runner message as taskRuns lists it.
func entry(t testing.TB, m jetstream.Msg) string {
	if strings.HasSuffix(m.Subject(), ".event") {
		var ev schemas.Event
		require.NoError(t, jsonUnmarshal(m.Data(), &ev))
		return fmt.Sprintf("e%d", ev.Counter)
	}
	var s schemas.RunnerStatus
	require.NoError(t, jsonUnmarshal(m.Data(), &s))
	return "s:" + s.Status
}
