package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/client"
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

// Without a worker, nobody answers a cancel, and WaitFinal ends with its
// context.
func TestCancelNoWorker(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, false)
	cl := connect(t, sys)
	_, err := cl.Submit(context.Background(), quick("nw-1"))
	require.NoError(t, err)
	_, err = cl.Cancel(context.Background(), "nw-1")
	require.ErrorIs(t, err, jsbridge.ErrNoWorker)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = cl.WaitFinal(ctx, "nw-1")
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.NotErrorIs(t, err, client.ErrNotProvisioned)
}
