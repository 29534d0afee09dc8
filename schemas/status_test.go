package schemas

import (
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStateFinalAndRunnerStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		state  State
		final  bool
		runner string
	}{
		{StateQueued, false, "starting"},
		{StateRunning, false, "running"},
		{StateSuccess, true, "successful"},
		{StateFailed, true, "failed"},
		{StateCancelled, true, "canceled"},
		{StateTimeout, true, "timeout"},
		{State("bogus"), false, "failed"},
		{State(""), false, "failed"},
	} {
		t.Run(string(tc.state), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.final, tc.state.Final())
			require.Equal(t, tc.runner, tc.state.RunnerStatus())
			if tc.state != "bogus" && tc.state != "" {
				// The two vocabularies agree on which states end a run.
				require.Equal(t, tc.final, RunnerFinal(tc.state.RunnerStatus()))
			}
		})
	}
	// The state words are the seed's.
	require.Equal(t, []State{"queued", "running", "success", "failed", "cancelled", "timeout"},
		[]State{StateQueued, StateRunning, StateSuccess, StateFailed, StateCancelled, StateTimeout})
}

func TestTimeMarshal(t *testing.T) {
	t.Parallel()
	plus2 := time.FixedZone("UTC+2", 2*3600)
	for _, tc := range []struct {
		name string
		in   time.Time
		want string
	}{
		{"seed example", time.Date(2026, 1, 21, 10, 30, 0, 0, time.UTC), `"2026-01-21T10:30:00.000Z"`},
		{"milliseconds", time.Date(2026, 1, 21, 10, 30, 5, 123_000_000, time.UTC), `"2026-01-21T10:30:05.123Z"`},
		{"converted to UTC", time.Date(2026, 1, 21, 12, 30, 0, 0, plus2), `"2026-01-21T10:30:00.000Z"`},
		{"sub-millisecond dropped", time.Date(2026, 1, 21, 10, 30, 0, 999_999_999, time.UTC), `"2026-01-21T10:30:00.999Z"`},
		{"day boundary in UTC", time.Date(2026, 1, 1, 1, 0, 0, 0, plus2), `"2025-12-31T23:00:00.000Z"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(Time{tc.in})
			require.NoError(t, err)
			require.Equal(t, tc.want, string(b))
			b, err = json.Marshal(NewTime(tc.in))
			require.NoError(t, err)
			require.Equal(t, tc.want, string(b))
		})
	}
}

func TestNewTime(t *testing.T) {
	t.Parallel()
	in := time.Date(2026, 1, 21, 12, 30, 0, 456_789_123, time.FixedZone("X", 2*3600))
	got := NewTime(in)
	require.Equal(t, time.UTC, got.Location())
	require.Equal(t, 456_000_000, got.Nanosecond(), "truncated, not rounded, to milliseconds")
	require.True(t, got.Equal(in.Truncate(time.Millisecond)))

	// What NewTime returns survives a JSON round trip unchanged.
	b, err := json.Marshal(got)
	require.NoError(t, err)
	var back Time
	require.NoError(t, json.Unmarshal(b, &back))
	require.True(t, back.Equal(got.Time))
}

func TestTimeUnmarshal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: `"2026-01-21T10:30:00.000Z"`, want: time.Date(2026, 1, 21, 10, 30, 0, 0, time.UTC)},
		{in: `"2026-01-21T10:30:00Z"`, want: time.Date(2026, 1, 21, 10, 30, 0, 0, time.UTC)},
		{in: `"2026-01-21T12:30:00.5+02:00"`, want: time.Date(2026, 1, 21, 10, 30, 0, 500_000_000, time.UTC)},
		{in: `"2026-01-21T10:30:00.123456789Z"`, want: time.Date(2026, 1, 21, 10, 30, 0, 123456789, time.UTC)},
		{in: `1769000000`, err: "timestamp must be a string"},
		{in: `"2026-01-21 10:30:00"`, err: `timestamp "2026-01-21 10:30:00"`},
		{in: `"yesterday"`, err: `timestamp "yesterday"`},
		{in: `""`, err: `timestamp ""`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			var got Time
			err := json.Unmarshal([]byte(tc.in), &got)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.True(t, tc.want.Equal(got.Time), "got %s", got.Time)
		})
	}
	// null leaves an optional timestamp unset.
	var s struct {
		At *Time `json:"at"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"at":null}`), &s))
	require.Nil(t, s.At)
}

// seedStatus is the TaskStatus example of the MQTT ansible-worker's README.
const seedStatus = `{
  "task_id": "a1b2c3d4e5f67890",
  "state": "running",
  "created_at": "2026-01-21T10:30:00.000Z",
  "started_at": "2026-01-21T10:30:05.000Z",
  "completed_at": null,
  "duration_seconds": 45.5,
  "tasks_total": 25,
  "tasks_ok": 20,
  "tasks_changed": 3,
  "tasks_failed": 0,
  "tasks_skipped": 2,
  "tasks_unreachable": 0,
  "return_code": null,
  "error_message": null,
  "output": {}
}`

func TestParseTaskStatusSeedExample(t *testing.T) {
	t.Parallel()
	s, err := ParseTaskStatus([]byte(seedStatus))
	require.NoError(t, err)
	require.Equal(t, "a1b2c3d4e5f67890", s.TaskID)
	require.Equal(t, StateRunning, s.State)
	require.True(t, s.CreatedAt.Equal(time.Date(2026, 1, 21, 10, 30, 0, 0, time.UTC)))
	require.True(t, s.StartedAt.Equal(time.Date(2026, 1, 21, 10, 30, 5, 0, time.UTC)))
	require.Nil(t, s.CompletedAt)
	require.Equal(t, 45.5, s.DurationSeconds)
	require.Equal(t, Counts{Total: 25, OK: 20, Changed: 3, Skipped: 2},
		Counts{s.TasksTotal, s.TasksOK, s.TasksChanged, s.TasksFailed, s.TasksSkipped, s.TasksUnreachable})
	require.Nil(t, s.ReturnCode)
	require.Nil(t, s.ErrorMessage)
	require.Equal(t, "", s.Err())
	require.Equal(t, map[string]any{}, s.Output)

	// Written back, it is the seed's document plus group, worker and attempt.
	b, err := json.Marshal(s)
	require.NoError(t, err)
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(seedStatus), &want))
	want["group"], want["worker"], want["attempt"] = "", "", float64(0)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, want, got)
}

func TestTaskStatusJSON(t *testing.T) {
	t.Parallel()
	rc := 2
	at := time.Date(2026, 1, 21, 10, 30, 0, 0, time.UTC)
	s := TaskStatus{TaskID: "t1", State: StateFailed, CreatedAt: NewTime(at), StartedAt: NewTime(at.Add(time.Second)),
		CompletedAt: NewTime(at.Add(3500 * time.Millisecond)), DurationSeconds: 2.5, ReturnCode: &rc,
		Output: map[string]any{"vm_ip": "10.0.0.50", "vm_id": float64(105)}, Group: "production",
		Worker: "w-1", Attempt: 2}
	s.SetCounts(Counts{Total: 7, OK: 5, Changed: 2, Failed: 1, Skipped: 1, Unreachable: 1})
	s.SetError(`task "x" failed`)
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.JSONEq(t, `{
		"task_id": "t1", "state": "failed",
		"created_at": "2026-01-21T10:30:00.000Z", "started_at": "2026-01-21T10:30:01.000Z",
		"completed_at": "2026-01-21T10:30:03.500Z", "duration_seconds": 2.5,
		"tasks_total": 7, "tasks_ok": 5, "tasks_changed": 2, "tasks_failed": 1, "tasks_skipped": 1,
		"tasks_unreachable": 1, "return_code": 2, "error_message": "task \"x\" failed",
		"output": {"vm_ip": "10.0.0.50", "vm_id": 105},
		"group": "production", "worker": "w-1", "attempt": 2}`, string(b))

	// Every field has the contract's name, and every field is always present.
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &keys))
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	require.Equal(t, []string{"attempt", "completed_at", "created_at", "duration_seconds", "error_message",
		"group", "output", "return_code", "started_at", "state", "task_id", "tasks_changed", "tasks_failed",
		"tasks_ok", "tasks_skipped", "tasks_total", "tasks_unreachable", "worker"}, names)

	back, err := ParseTaskStatus(b)
	require.NoError(t, err)
	require.Equal(t, s.TaskID, back.TaskID)
	require.Equal(t, 2, *back.ReturnCode)
	require.Equal(t, `task "x" failed`, back.Err())
	require.True(t, back.CompletedAt.Equal(s.CompletedAt.Time))
	require.Equal(t, s.Output, back.Output)
	require.Equal(t, Counts{7, 5, 2, 1, 1, 1}, Counts{back.TasksTotal, back.TasksOK, back.TasksChanged,
		back.TasksFailed, back.TasksSkipped, back.TasksUnreachable})

	// An unset time, return code and error are null, as in the seed.
	var empty map[string]any
	b, err = json.Marshal(TaskStatus{TaskID: "t2", State: StateQueued})
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &empty))
	for _, k := range []string{"created_at", "started_at", "completed_at", "return_code", "error_message"} {
		require.Contains(t, empty, k)
		require.Nil(t, empty[k], k)
	}
}

func TestTaskStatusSetError(t *testing.T) {
	t.Parallel()
	var s TaskStatus
	require.Equal(t, "", s.Err())
	s.SetError("boom")
	require.Equal(t, "boom", s.Err())
	require.Equal(t, "boom", *s.ErrorMessage)
	s.SetError("")
	require.Nil(t, s.ErrorMessage, "an empty message clears error_message to null")
	require.Equal(t, "", s.Err())
}

func TestParseTaskStatusErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`not json`, "decode task status: invalid character"},
		{`{"task_id": 5}`, "decode task status: json: cannot unmarshal number"},
		{`{"created_at": "tomorrow"}`, `decode task status: timestamp "tomorrow"`},
		{`{"created_at": 12}`, "decode task status: timestamp must be a string"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTaskStatus([]byte(tc.in))
			require.ErrorContains(t, err, tc.want)
		})
	}
}
