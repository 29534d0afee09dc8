package jsbridge

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every cancel marker recorded after the watch starts reaches it, with its
// task id; markers of other groups and the claims of the group do not.
func TestWatchCancelMarkers(t *testing.T) {
	env := newIntakeEnv(t)
	ctx := context.Background()
	a, err := Provision(ctx, env.js, ProvisionConfig{Names: env.names}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	store := NewStatusStore(a, slog.New(slog.DiscardHandler))
	require.NoError(t, store.MarkCancel(ctx, "g", "before"))

	got := make(chan string, 10)
	stop, err := WatchCancelMarkers(a.Claims, env.names, func(id string) { got <- id })
	require.NoError(t, err)
	_, err = store.Claim(ctx, "g", "claimed", 7)
	require.NoError(t, err)
	require.NoError(t, store.MarkCancel(ctx, "other", "elsewhere"))
	require.NoError(t, store.MarkCancel(ctx, "g", "t-1"))
	require.NoError(t, store.MarkCancel(ctx, "g", "t-2"))
	for _, want := range []string{"t-1", "t-2"} {
		select {
		case id := <-got:
			require.Equal(t, want, id)
		case <-time.After(5 * time.Second):
			t.Fatalf("the marker of %s did not arrive", want)
		}
	}
	stop()
	select {
	case id := <-got:
		t.Fatalf("unexpected marker %s", id)
	default:
	}
	_, err = a.Claims.Get(ctx, Names{Group: "g"}.CancelKey("before"))
	require.NoError(t, err, "markers stay for the pull-time check")
}
