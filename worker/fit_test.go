package worker

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// An event over the size limit is shrunk, never dropped: it keeps its
// counter, name and context, loses its bulky result first, then stdout.
func TestEncodeEventFitsLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 300_000)
	data, err := json.Marshal(map[string]any{"task": "Dump", "host": "web1", "res": map[string]any{"msg": big}})
	require.NoError(t, err)
	ev := &schemas.Event{UUID: "u", Counter: 7, Event: "runner_on_ok", Stdout: "ok: [web1] => " + big, EventData: data}

	b, err := encodeEvent(ev, 1<<20)
	require.NoError(t, err)
	require.Greater(t, len(b), 600_000, "under the limit: untouched")

	for _, max := range []int{200_000, 50_000, 2_000} {
		b, err := encodeEvent(ev, max)
		require.NoError(t, err)
		require.LessOrEqual(t, len(b), max)
		var got schemas.Event
		require.NoError(t, json.Unmarshal(b, &got))
		require.Equal(t, 7, got.Counter)
		require.Equal(t, "runner_on_ok", got.Event)
		require.Contains(t, got.Stdout, "truncated")
		var d map[string]any
		require.NoError(t, json.Unmarshal(got.EventData, &d))
		require.Equal(t, "Dump", d["task"])
		require.Contains(t, d["res"], "ansible_worker_truncated")
	}
	require.Equal(t, "ok: [web1] => "+big, ev.Stdout, "the caller's event is not modified")
}
