package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// The rules of a task's lifecycle, each against fakes of the ports: what
// is recorded and what becomes of the message in every case.

// lifecycle is the test bundle: a worker over fakes whose playbook run the
// test decides.
type lifecycle struct {
	t      *testing.T
	w      *Worker
	src    *fakeSource
	ledger *fakeLedger
	sinks  *fakeSinks
	// exit is what the fake playbook run returns; block makes it wait
	// for its context instead.
	exit  Exit
	block bool
	runs  atomic.Int32
}

func newLifecycle(t *testing.T, mod func(*Config)) *lifecycle {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site.yml"), []byte("- hosts: all\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hosts"), []byte("localhost\n"), 0o644))
	cfg := Config{Group: "g", WorkerID: "w1", PlaybookDir: dir, DataDir: filepath.Join(t.TempDir(), "data"),
		AnsiblePlaybook: "/bin/true", MaxDeliver: 3, StatusInterval: time.Hour, AckWait: time.Hour,
		StoreWait: 300 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	lc := &lifecycle{t: t, src: &fakeSource{}, ledger: newFakeLedger(), sinks: &fakeSinks{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := New(cfg, Ports{Source: lc.src, Ledger: lc.ledger, Cancels: fakeCancels{}, Sinks: lc.sinks}, log)
	require.NoError(t, err)
	w.execProcess = func(ctx context.Context, p *Process) (Exit, error) {
		lc.runs.Add(1)
		if lc.block {
			<-ctx.Done()
			return Exit{RC: -1, Stopped: true}, nil
		}
		return lc.exit, nil
	}
	lc.w = w
	return lc
}

// task is a valid request for site.yml with extra fields.
func task(id string, extra map[string]any) []byte {
	m := map[string]any{"task_id": id, "playbook": "site.yml", "inventory": "hosts"}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// deliver hands data to the worker as delivery attempt of sequence seq, in
// tasks, and returns what became of the message once the worker is done.
func (lc *lifecycle) deliverIn(tasks context.Context, seq uint64, attempt int, data []byte) []string {
	s := &fakeSettler{}
	d := &Delivery{Submission: Submission{Seq: seq, Stored: time.Now(), Data: data}, Attempt: attempt, Settler: s}
	lc.w.handle(tasks, context.Background(), d)
	return s.settled()
}

// shutdownOnceRunning returns the tasks context of a worker that stops
// (ErrShutdown) as soon as the fake Ansible runs.
func (lc *lifecycle) shutdownOnceRunning() context.Context {
	tasks, stop := context.WithCancelCause(context.Background())
	go func() {
		for lc.runs.Load() == 0 {
			time.Sleep(time.Millisecond) // until Ansible "runs"
		}
		stop(ErrShutdown)
	}()
	return tasks
}

func (lc *lifecycle) deliver(seq uint64, attempt int, data []byte) []string {
	return lc.deliverIn(context.Background(), seq, attempt, data)
}

func TestLifecycleSuccessIsAckedAfterTheFinalStatus(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, task("ok", nil)))
	require.Equal(t, []schemas.State{schemas.StateQueued, schemas.StateRunning, schemas.StateSuccess}, lc.ledger.states("ok"),
		"queued first even when pulled before intake saw it")
	st := lc.ledger.status("ok")
	require.Equal(t, 0, *st.ReturnCode)
	require.Equal(t, []string{"ok/1"}, lc.sinks.runs())
	msgs := lc.sinks.msgs["ok/1"]
	require.Equal(t, "close", msgs[len(msgs)-1], "the sink is flushed")
	require.Contains(t, msgs[len(msgs)-2], `"successful"`, "the final runner status comes last")
}

func TestLifecycleFailedRunIsAcked(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.exit = Exit{RC: 2}
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, task("bad", nil)))
	st := lc.ledger.status("bad")
	require.Equal(t, schemas.StateFailed, st.State)
	require.Equal(t, "ansible-playbook exited with code 2", st.Err())
}

func TestLifecycleInvalidTaskFailsAndIsTermed(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	require.Equal(t, []string{"term invalid task: forks must be 1 or more, got 0"},
		lc.deliver(1, 1, task("inv", map[string]any{"forks": 0})))
	require.Equal(t, []schemas.State{schemas.StateFailed}, lc.ledger.states("inv"))
	require.Zero(t, lc.runs.Load())
}

func TestLifecycleRefusedByPolicyFailsAndIsTermed(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	settled := lc.deliver(1, 1, task("pol", map[string]any{"extra_vars": map[string]any{"ansible_shell_executable": "x"}}))
	require.Len(t, settled, 1)
	require.Contains(t, settled[0], `term invalid task: extra_vars: "ansible_shell_executable" may not be set`)
	require.Equal(t, schemas.StateFailed, lc.ledger.status("pol").State)
}

func TestLifecycleUnreadableTaskIsTermedWithoutStatus(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	settled := lc.deliver(1, 1, []byte("{nope"))
	require.Len(t, settled, 1)
	require.Contains(t, settled[0], "is not valid JSON")
	require.Empty(t, lc.ledger.statuses)
}

func TestLifecycleDuplicateIsTermedAndRecordsNothing(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, task("dup", nil)))
	before := lc.ledger.states("dup")
	require.Equal(t, []string{"term duplicate task_id"}, lc.deliver(2, 1, task("dup", nil)))
	require.Equal(t, before, lc.ledger.states("dup"))
	require.EqualValues(t, 1, lc.runs.Load())
}

func TestLifecycleAlreadyFinalIsAckedWithoutRunning(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.ledger.set(schemas.TaskStatus{TaskID: "done", State: schemas.StateCancelled})
	require.Equal(t, []string{"ack"}, lc.deliver(1, 2, task("done", nil)))
	require.Zero(t, lc.runs.Load())
	require.Equal(t, schemas.StateCancelled, lc.ledger.status("done").State)
}

func TestLifecycleMaxDeliverDoesNotCountHandBacks(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil) // max_deliver 3
	lc.ledger.handBacks["hb"] = 1
	require.Equal(t, []string{"ack"}, lc.deliver(1, 4, task("hb", nil)), "3 real deliveries and a hand-back")
	require.Equal(t, schemas.StateSuccess, lc.ledger.status("hb").State)

	require.Equal(t, []string{"term max deliveries reached"}, lc.deliver(2, 4, task("max", nil)))
	st := lc.ledger.status("max")
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "gave up after 3 deliveries")
}

func TestLifecycleCancelBeforeStart(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.ledger.cancels["c"] = true
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, task("c", nil)))
	st := lc.ledger.status("c")
	require.Equal(t, schemas.StateCancelled, st.State)
	require.Equal(t, "cancelled before it started", st.Err())
	require.Zero(t, lc.runs.Load())
}

func TestLifecycleCancelWhileRunning(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.block = true
	go func() {
		for !lc.w.Cancel("run") {
			time.Sleep(time.Millisecond) // until the task is tracked
		}
	}()
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, task("run", nil)))
	st := lc.ledger.status("run")
	require.Equal(t, schemas.StateCancelled, st.State)
	require.Equal(t, "cancelled on request", st.Err())
}

func TestLifecycleTimeout(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, func(c *Config) { c.TaskTimeout = 20 * time.Millisecond })
	lc.block = true
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, task("slow", nil)))
	st := lc.ledger.status("slow")
	require.Equal(t, schemas.StateTimeout, st.State)
	require.Equal(t, "timed out after 20ms", st.Err())
}

func TestLifecycleShutdownHandsBack(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.block = true
	tasks := lc.shutdownOnceRunning()
	require.Equal(t, []string{"nak 0s"}, lc.deliverIn(tasks, 1, 1, task("sd", nil)))
	st := lc.ledger.status("sd")
	require.Equal(t, schemas.StateQueued, st.State, "handed back, not ended")
	require.Contains(t, st.Err(), "handed back to the queue")
	require.Equal(t, 1, lc.ledger.handBacks["sd"])
}

// A KV error while reading the previous status must not let a finished
// task run again: the delivery is retried later and nothing is recorded.
func TestLifecycleStatusReadErrorRetriesLater(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.ledger.set(schemas.TaskStatus{TaskID: "x", State: schemas.StateSuccess})
	lc.ledger.getErr = errors.New("kv away")
	require.Equal(t, []string{"nak 2s"}, lc.deliver(1, 2, task("x", nil)))
	require.Zero(t, lc.runs.Load())
	require.Equal(t, []schemas.State{schemas.StateSuccess}, lc.ledger.states("x"))
}

// A store that does not answer for a moment (a KV leader election in a
// cluster) is waited for in place, with heartbeats: the delivery runs as
// it is, instead of a retry later that would count as another attempt
// and toward max_deliver.
func TestLifecycleStoreHiccupIsWaitedForInPlace(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, func(c *Config) { c.StoreWait = 10 * time.Second })
	lc.ledger.getFailures = 3
	s := &fakeSettler{}
	d := &Delivery{Submission: Submission{Seq: 1, Stored: time.Now(), Data: task("hiccup", nil)}, Attempt: 3, Settler: s}
	lc.w.handle(context.Background(), context.Background(), d)
	require.Equal(t, []string{"ack"}, s.settled(), "ran on this delivery, no retry later")
	require.Contains(t, s.calls, "in-progress", "the delivery was kept alive while waiting")
	require.Equal(t, int32(1), lc.runs.Load())
	st := lc.ledger.status("hiccup")
	require.Equal(t, schemas.StateSuccess, st.State)
	require.Equal(t, 3, st.Attempt, "the delivery's own attempt, not more")
}

// The same for the hand-back count: an error must not fail the task early.
func TestLifecycleHandBackReadErrorRetriesLater(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.ledger.handBacksErr = errors.New("kv away")
	require.Equal(t, []string{"nak 2s"}, lc.deliver(1, 4, task("y", nil)))
	require.Equal(t, []schemas.State{schemas.StateQueued}, lc.ledger.states("y"), "still waiting")
}

// The running status never overwrites a cancel recorded meanwhile (by
// another worker's intake): the task does not run.
func TestLifecycleRunningDoesNotOverwriteCancelled(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.ledger.beforeTransition = func(id string) {
		lc.ledger.mu.Lock()
		defer lc.ledger.mu.Unlock()
		if _, ok := lc.ledger.statuses[id]; !ok {
			lc.ledger.set(schemas.TaskStatus{TaskID: id, State: schemas.StateCancelled})
		}
	}
	require.Equal(t, []string{"ack"}, lc.deliver(1, 1, task("raced", nil)))
	require.Zero(t, lc.runs.Load())
	require.Equal(t, []schemas.State{schemas.StateCancelled}, lc.ledger.states("raced"))
}

// A scratch directory that cannot be made is this worker's fault: the task
// is retried later, not failed.
func TestLifecycleScratchFailureRetriesLater(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	require.NoError(t, os.RemoveAll(lc.w.cfg.DataDir))
	require.NoError(t, os.WriteFile(lc.w.cfg.DataDir, nil, 0o600)) // not a directory any more
	require.Equal(t, []string{"nak 5s"}, lc.deliver(1, 1, task("disk", nil)))
	require.Zero(t, lc.runs.Load())
	require.NotEqual(t, schemas.StateFailed, stateOf(lc.ledger.status("disk")))
}

func stateOf(st *schemas.TaskStatus) schemas.State {
	if st == nil {
		return ""
	}
	return st.State
}

func TestLifecycleQueueFullAtIntake(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, func(c *Config) { c.MaxQueueSize = 2 })
	lc.src.waiting = 2 // this one and one more
	lc.w.intake(Submission{Seq: 1, Stored: time.Now(), Data: task("fits", nil)})
	require.Equal(t, schemas.StateQueued, lc.ledger.status("fits").State)
	lc.src.waiting = 3
	lc.w.intake(Submission{Seq: 2, Stored: time.Now(), Data: task("full", nil)})
	st := lc.ledger.status("full")
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "queue full: 2 tasks of group g were already waiting")
	lc.w.intake(Submission{Seq: 3, Stored: time.Now(), Data: []byte("junk")})
	require.Equal(t, []uint64{3}, lc.src.removed, "an unreadable submission leaves the queue at once")
}

// Far from full, submissions are counted against the last read of the
// queue instead of each reading it; near the limit each one reads it.
func TestLifecycleQueueLimitReadsTheQueueNearTheLimit(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, func(c *Config) { c.MaxQueueSize = 20 })
	lc.src.waiting = 1
	for i := range 5 {
		lc.w.intake(Submission{Seq: uint64(i + 1), Stored: time.Now(), Data: task(fmt.Sprintf("t%d", i), nil)})
	}
	require.Equal(t, 1, lc.src.asked, "one read for five submissions far from the limit")
	for i := range 5 {
		require.Equal(t, schemas.StateQueued, lc.ledger.status(fmt.Sprintf("t%d", i)).State)
	}
	lc.src.waiting = 20
	lc.w.queue.at = time.Time{} // the count is old
	lc.w.intake(Submission{Seq: 6, Stored: time.Now(), Data: task("at-limit", nil)})
	lc.w.intake(Submission{Seq: 7, Stored: time.Now(), Data: task("at-limit-2", nil)})
	require.Equal(t, 3, lc.src.asked, "at half the limit and above, every submission reads the queue")

	var b queueBound
	now := time.Now()
	require.False(t, b.room(10, now), "no count yet")
	b.set(3, now)
	require.True(t, b.room(10, now), "4 of 10")
	require.True(t, b.room(10, now), "5 of 10")
	require.False(t, b.room(10, now), "6 is over half of 10")
	require.False(t, b.room(100, now.Add(queueBoundAge+time.Millisecond)), "too old")
}

func TestLifecycleDecideCancel(t *testing.T) {
	t.Parallel()
	lc := newLifecycle(t, nil)
	lc.ledger.set(schemas.TaskStatus{TaskID: "q", State: schemas.StateQueued})
	r := lc.w.decideCancel(context.Background(), "q")
	require.Equal(t, schemas.CancelDone, r.Result)
	require.Equal(t, schemas.StateCancelled, lc.ledger.status("q").State)
	require.True(t, lc.ledger.cancels["q"])
	require.Equal(t, schemas.CancelUnknown, lc.w.decideCancel(context.Background(), "nope").Result)
	require.Equal(t, schemas.CancelFinished, lc.w.decideCancel(context.Background(), "q").Result)
}
