package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Follow gives a task's events in order and its final status; after the
// end, it replays them all.
func TestFollowRunsAndReplays(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, true)
	cl := connect(t, sys)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := cl.Submit(ctx, quick("f-1"))
	require.NoError(t, err)

	var live []*schemas.Event
	final, err := cl.Follow(ctx, "f-1", true, func(u jsbridge.Update) {
		if u.Event != nil {
			live = append(live, u.Event)
		}
	})
	require.NoError(t, err)
	require.Equal(t, schemas.StateSuccess, final.State)
	require.NotEmpty(t, live)
	for i, ev := range live {
		require.Equal(t, i+1, ev.Counter, "in order, no gaps")
	}
	require.Equal(t, "playbook_on_stats", live[len(live)-1].Event)

	var replayed int
	again, err := cl.Follow(ctx, "f-1", true, func(u jsbridge.Update) {
		if u.Event != nil {
			replayed++
		}
	})
	require.NoError(t, err)
	require.Equal(t, final.State, again.State)
	require.Equal(t, len(live), replayed)

	st, err := cl.WaitFinal(ctx, "f-1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateSuccess, st.State)
}

// Cancel stops a running task, and WaitFinal sees it end cancelled; a task
// the group does not know is left alone.
func TestCancelRunning(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, true)
	cl := connect(t, sys)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := schemas.TaskRequest{TaskID: "c-1", Playbook: "slow.yml", Inventory: "inventory/hosts", ExtraVars: map[string]any{"seconds": 60}}
	_, err := cl.Submit(ctx, req)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := cl.Status(ctx, "c-1")
		return err == nil && st.State == schemas.StateRunning
	}, 20*time.Second, 20*time.Millisecond)

	r, err := cl.Cancel(ctx, "c-1")
	require.NoError(t, err)
	require.Equal(t, jsbridge.CancelStopping, r.Result, r.Message)
	st, err := cl.WaitFinal(ctx, "c-1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateCancelled, st.State)

	r, err = cl.Cancel(ctx, "never-submitted")
	require.NoError(t, err)
	require.Equal(t, jsbridge.CancelUnknown, r.Result)
}

// Without a worker, nobody answers a cancel: the client cancels a waiting
// task itself, so the worker that pulls it later does not run it.
func TestCancelNoWorker(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, false)
	cl := connect(t, sys)
	_, err := cl.Submit(context.Background(), quick("nw-1"))
	require.NoError(t, err)
	r, err := cl.Cancel(context.Background(), "nw-1")
	require.NoError(t, err)
	require.Equal(t, jsbridge.CancelDone, r.Result, r.Message)
	require.Contains(t, r.Message, "no worker of group production is running")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cl.WaitFinal(ctx, "nw-1")
	require.NoError(t, err)
	require.Equal(t, schemas.StateCancelled, st.State)

	r, err = cl.Cancel(context.Background(), "nw-1")
	require.NoError(t, err)
	require.Equal(t, jsbridge.CancelFinished, r.Result)
	r, err = cl.Cancel(context.Background(), "nw-none")
	require.NoError(t, err)
	require.Equal(t, jsbridge.CancelUnknown, r.Result)
	ws, err := cl.Workers(context.Background(), "")
	require.NoError(t, err)
	require.Empty(t, ws)

	// A worker of another group is seen as that group's only.
	svc, err := jsbridge.RegisterWorker(sys.nc, jsbridge.Names{Prefix: "ansible", Group: "other"}, "w-other", "v1.2.3", jsbridge.WorkerOptions{})
	require.NoError(t, err)
	defer func() { _ = svc.Stop() }()
	ws, err = cl.Workers(context.Background(), "other")
	require.NoError(t, err)
	require.Len(t, ws, 1)
	require.Equal(t, jsbridge.WorkerInfo{ID: "w-other", Group: "other", Version: "1.2.3", ServiceID: svc.Info().ID}, ws[0])
	ws, err = cl.Workers(context.Background(), "")
	require.NoError(t, err)
	require.Empty(t, ws)
}
