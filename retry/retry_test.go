package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDoRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	calls := 0
	var notified []int
	err := Do(context.Background(), Policy{Initial: time.Millisecond}, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}, func(attempt int, err error) { notified = append(notified, attempt) })
	require.NoError(t, err)
	require.Equal(t, 3, calls)
	require.Equal(t, []int{1, 2}, notified)
}

func TestDoStopsOnPermanentAndAttempts(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	calls := 0
	err := Do(context.Background(), Policy{Initial: time.Millisecond}, func(context.Context) error {
		calls++
		return Permanent(boom)
	}, nil)
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, calls)

	calls = 0
	err = Do(context.Background(), Policy{Initial: time.Millisecond, Attempts: 4}, func(context.Context) error {
		calls++
		return boom
	}, nil)
	require.ErrorIs(t, err, boom)
	require.Equal(t, 4, calls)
}

// When the context ends, the error says both why the last attempt failed
// and that the context ended.
func TestDoContextEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	boom := errors.New("server away")
	err := Do(ctx, Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond}, func(context.Context) error { return boom }, nil)
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestBackoffCapAndJitter(t *testing.T) {
	t.Parallel()
	b := Policy{Initial: 100 * time.Millisecond, Max: time.Second}.NewBackoff()
	first := b.Next()
	require.InDelta(t, float64(100*time.Millisecond), float64(first), float64(20*time.Millisecond))
	for range 20 {
		require.LessOrEqual(t, b.Next(), 1200*time.Millisecond) // cap plus jitter
	}
	b.Reset()
	require.Less(t, b.Next(), 200*time.Millisecond)
	require.False(t, Sleep(canceled(), time.Hour))
	require.True(t, Sleep(context.Background(), time.Millisecond))
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
