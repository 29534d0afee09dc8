package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// The NATS server goes away for some seconds while a playbook runs: the
// worker reconnects by itself; every event (in order, none missing) and the
// final status reach the stream and KV once the server is back; meanwhile
// the worker starts no new task and does not crash.
func TestNATSOutageDuringRun(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	port := freePort(t)
	ns := startServerAt(t, store, port)
	w := startWorker(t, ns.url, workerOpts{Concurrency: 2})
	c := connectClient(t, ns.url)

	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "through-outage", "-p", "ticks.yml", "-i",
		"inventory/hosts")
	require.Equal(t, 0, code, errOut)
	c.waitRunning(t, "production", "through-outage")
	// Stop the server while the loop's item events are flowing.
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := len(events(c.runnerMessages(t, "through-outage"))); n < 6 {
			return fmt.Errorf("%d events so far", n)
		}
		return nil
	})

	ns.stop()
	outage := time.Now()
	// The server stays away while the playbook goes on; the worker must
	// notice (it logs the disconnect) and keep running.
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !containsLog(w, "NATS connection lost") {
			return fmt.Errorf("worker did not notice the outage")
		}
		return nil
	})
	for time.Since(outage) < 3*time.Second {
		select {
		case <-w.done:
			t.Fatalf("worker exited during the outage:\n%s", w.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	ns = startServerAt(t, store, port)

	st := c.waitFinal(t, "production", "through-outage", 60*time.Second)
	require.Equal(t, schemas.StateSuccess, st.State, st.Err())
	msgs := c.runnerMessages(t, "through-outage")
	evs := events(msgs)
	for i, ev := range evs {
		require.Equal(t, i+1, ev.Counter, "events in order, none missing")
	}
	require.Equal(t, "playbook_on_start", evs[0].Event)
	require.Equal(t, "playbook_on_stats", evs[len(evs)-1].Event)
	require.Equal(t, []string{"Tick", "Done"}, taskStarts(t, evs))
	items := 0
	for _, ev := range evs {
		if ev.Event == "runner_item_on_ok" {
			items++
		}
	}
	require.Equal(t, 12, items, "every item event, including those of the outage")
	var statuses []string
	for _, m := range msgs {
		if m.Status != nil {
			statuses = append(statuses, m.Status.Status)
		}
	}
	require.Equal(t, []string{"starting", "running", "successful"}, statuses)

	// Back to normal: the worker takes new tasks again.
	_, errOut, code = runCLI(t, "submit", "-s", ns.url, "--task-id", "after-outage", "-p", "quick.yml", "-i",
		"inventory/hosts", "--wait")
	require.Equal(t, 0, code, errOut)
	select {
	case <-w.done:
		t.Fatal("worker exited")
	default:
	}
}

func containsLog(w *workerProc, s string) bool {
	return len(w.logs.String()) > 0 && contains(w.logs.String(), s)
}

func taskStarts(t testing.TB, evs []*schemas.Event) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		if ev.Event == "playbook_on_task_start" {
			out = append(out, taskName(t, ev))
		}
	}
	return out
}
