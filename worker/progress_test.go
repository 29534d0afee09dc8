package worker

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// ev builds an event the way ansible-runner shapes it: the event name and an
// event_data object.
func ev(t *testing.T, name string, data map[string]any) *schemas.Event {
	t.Helper()
	b, err := json.Marshal(data)
	require.NoError(t, err)
	return &schemas.Event{Event: name, EventData: b, RunnerIdent: "t1", UUID: "u-" + name}
}

func taskStart(t *testing.T, task string) *schemas.Event {
	return ev(t, "playbook_on_task_start", map[string]any{"task": task, "name": task, "is_conditional": false})
}

func ok(t *testing.T, host, task string, changed bool) *schemas.Event {
	return ev(t, "runner_on_ok", map[string]any{"host": host, "task": task, "task_action": "command",
		"res": map[string]any{"changed": changed, "rc": 0}})
}

func failed(t *testing.T, host, task string, ignore any, res map[string]any) *schemas.Event {
	return ev(t, "runner_on_failed", map[string]any{"host": host, "task": task, "ignore_errors": ignore, "res": res})
}

func unreachable(t *testing.T, host, task, msg string) *schemas.Event {
	return ev(t, "runner_on_unreachable", map[string]any{"host": host, "task": task,
		"res": map[string]any{"msg": msg, "unreachable": true, "changed": false}})
}

func skipped(t *testing.T, host, task string) *schemas.Event {
	return ev(t, "runner_on_skipped", map[string]any{"host": host, "task": task})
}

func setStats(t *testing.T, data map[string]any) *schemas.Event {
	return ev(t, "runner_on_ok", map[string]any{"host": "localhost", "task": "report", "task_action": "set_stats",
		"res": map[string]any{"changed": false, "ansible_stats": map[string]any{"data": data, "per_host": false, "aggregate": true}}})
}

func stats(t *testing.T, ok, changed, failures, skipped, dark map[string]int) *schemas.Event {
	return ev(t, "playbook_on_stats", map[string]any{"ok": ok, "changed": changed, "failures": failures,
		"skipped": skipped, "dark": dark, "ignored": map[string]int{}, "rescued": map[string]int{},
		"processed": map[string]int{"web1": 1, "web2": 1}, "artifact_data": map[string]any{}})
}

func verbose(text string) *schemas.Event {
	return &schemas.Event{Event: "verbose", Stdout: text}
}

func TestProgressCountsLiveThenRecap(t *testing.T) {
	t.Parallel()
	p := NewProgress()
	counts, out, changed := p.Snapshot()
	require.Equal(t, schemas.Counts{}, counts)
	require.Equal(t, map[string]any{}, out)
	require.False(t, changed)

	steps := []struct {
		event *schemas.Event
		want  schemas.Counts
	}{
		{ev(t, "playbook_on_start", map[string]any{"playbook": "site.yml"}), schemas.Counts{}},
		{ev(t, "playbook_on_play_start", map[string]any{"play": "all"}), schemas.Counts{}},
		{taskStart(t, "ping"), schemas.Counts{Total: 1}},
		{ok(t, "web1", "ping", false), schemas.Counts{Total: 1, OK: 1}},
		{ok(t, "web2", "ping", false), schemas.Counts{Total: 1, OK: 2}},
		{taskStart(t, "deploy"), schemas.Counts{Total: 2, OK: 2}},
		{ok(t, "web1", "deploy", true), schemas.Counts{Total: 2, OK: 3, Changed: 1}},
		{failed(t, "web2", "deploy", false, map[string]any{"msg": "boom"}), schemas.Counts{Total: 2, OK: 3, Changed: 1, Failed: 1}},
		{taskStart(t, "optional"), schemas.Counts{Total: 3, OK: 3, Changed: 1, Failed: 1}},
		{skipped(t, "web1", "optional"), schemas.Counts{Total: 3, OK: 3, Changed: 1, Failed: 1, Skipped: 1}},
		{ev(t, "runner_on_start", map[string]any{"host": "web1"}), schemas.Counts{Total: 3, OK: 3, Changed: 1, Failed: 1, Skipped: 1}},
		{ev(t, "runner_item_on_ok", map[string]any{"host": "web1", "res": map[string]any{"changed": true}}), schemas.Counts{Total: 3, OK: 3, Changed: 1, Failed: 1, Skipped: 1}},
		{taskStart(t, "tolerated"), schemas.Counts{Total: 4, OK: 3, Changed: 1, Failed: 1, Skipped: 1}},
		// An ignored failure counts as ok, as in PLAY RECAP.
		{failed(t, "web1", "tolerated", true, map[string]any{"msg": "meh"}), schemas.Counts{Total: 4, OK: 4, Changed: 1, Failed: 1, Skipped: 1}},
		{unreachable(t, "db1", "ping", "ssh: connect to host db1 port 22: Connection refused"), schemas.Counts{Total: 4, OK: 4, Changed: 1, Failed: 1, Skipped: 1, Unreachable: 1}},
		// The recap replaces the live figures with Ansible's own sums.
		{stats(t, map[string]int{"web1": 3, "web2": 1}, map[string]int{"web1": 1}, map[string]int{"web2": 1},
			map[string]int{"web1": 1, "web2": 2}, map[string]int{"db1": 1}),
			schemas.Counts{Total: 4, OK: 4, Changed: 1, Failed: 1, Skipped: 3, Unreachable: 1}},
	}
	for i, s := range steps {
		p.Observe(s.event)
		got, _, _ := p.Snapshot()
		require.Equal(t, s.want, got, "after event %d (%s)", i, s.event.Event)
	}

	// Events after the recap do not move the counts off it.
	p.Observe(ok(t, "web1", "late", true))
	p.Observe(failed(t, "web1", "late", false, map[string]any{"msg": "late"}))
	p.Observe(skipped(t, "web1", "late"))
	p.Observe(unreachable(t, "web1", "late", "gone"))
	got, _, _ := p.Snapshot()
	require.Equal(t, schemas.Counts{Total: 4, OK: 4, Changed: 1, Failed: 1, Skipped: 3, Unreachable: 1}, got)
}

func TestProgressRecapWins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		events func(t *testing.T) []*schemas.Event
		want   schemas.Counts
	}{
		{"recap larger than live", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{taskStart(t, "a"), ok(t, "h1", "a", false),
				stats(t, map[string]int{"h1": 5, "h2": 5}, map[string]int{"h1": 2, "h2": 0}, nil, nil, nil)}
		}, schemas.Counts{Total: 1, OK: 10, Changed: 2}},
		{"recap smaller than live", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{taskStart(t, "a"), ok(t, "h1", "a", true), ok(t, "h1", "a", true),
				failed(t, "h1", "a", nil, map[string]any{"msg": "x"}),
				stats(t, map[string]int{"h1": 1}, map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{})}
		}, schemas.Counts{Total: 1, OK: 1}},
		{"empty recap", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{ok(t, "h1", "a", true), ev(t, "playbook_on_stats", map[string]any{})}
		}, schemas.Counts{}},
		{"no events", func(t *testing.T) []*schemas.Event { return nil }, schemas.Counts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := NewProgress()
			for _, e := range tc.events(t) {
				p.Observe(e)
			}
			got, _, _ := p.Snapshot()
			require.Equal(t, tc.want, got)
		})
	}
}

func TestProgressIgnoreErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ignore any
		counts schemas.Counts
		reason string
	}{
		{"ignore_errors true", true, schemas.Counts{OK: 1}, ""},
		{"ignore_errors true and changed", true, schemas.Counts{OK: 1, Changed: 1}, ""},
		{"ignore_errors false", false, schemas.Counts{Failed: 1}, `task "check" failed on web1: disk full`},
		{"ignore_errors null", nil, schemas.Counts{Failed: 1}, `task "check" failed on web1: disk full`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := NewProgress()
			p.Observe(failed(t, "web1", "check", tc.ignore, map[string]any{"msg": "disk full",
				"changed": strings.HasSuffix(tc.name, "changed")}))
			got, _, changed := p.Snapshot()
			require.Equal(t, tc.counts, got)
			require.True(t, changed)
			require.Equal(t, tc.reason, p.FailureReason())
		})
	}
}

func TestProgressSetStatsOutput(t *testing.T) {
	t.Parallel()
	p := NewProgress()
	p.Observe(setStats(t, map[string]any{"vm_ip": "10.0.0.50", "vm_id": 105, "state": "creating"}))
	_, out, _ := p.Snapshot()
	require.Equal(t, map[string]any{"vm_ip": "10.0.0.50", "vm_id": float64(105), "state": "creating"}, out)

	// A later call overwrites an earlier key and keeps the others, nested
	// values included; an ok without ansible_stats changes nothing.
	p.Observe(ok(t, "localhost", "noise", false))
	p.Observe(setStats(t, map[string]any{"state": "ready", "disks": []any{"sda", "sdb"}, "meta": map[string]any{"a": 1}}))
	p.Observe(setStats(t, map[string]any{"meta": map[string]any{"b": 2}}))
	_, out, _ = p.Snapshot()
	require.Equal(t, map[string]any{"vm_ip": "10.0.0.50", "vm_id": float64(105), "state": "ready",
		"disks": []any{"sda", "sdb"}, "meta": map[string]any{"b": float64(2)}}, out)

	// Snapshot returns a copy: changing it does not change the progress.
	out["vm_ip"] = "tampered"
	delete(out, "state")
	_, again, _ := p.Snapshot()
	require.Equal(t, "10.0.0.50", again["vm_ip"])
	require.Equal(t, "ready", again["state"])

	// The recap keeps the output.
	p.Observe(stats(t, map[string]int{"localhost": 4}, nil, nil, nil, nil))
	_, out, _ = p.Snapshot()
	require.Equal(t, "ready", out["state"])

	// set_stats with an empty data object adds nothing.
	p.Observe(setStats(t, map[string]any{}))
	_, out2, _ := p.Snapshot()
	require.Equal(t, out, out2)
}

func TestProgressFailureReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		events func(t *testing.T) []*schemas.Event
		want   string
	}{
		{"nothing failed", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{taskStart(t, "a"), ok(t, "h1", "a", true)}
		}, ""},
		{"msg string", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "Install nginx", false, map[string]any{"msg": "No package matching 'ngnix' is available"})}
		}, `task "Install nginx" failed on web1: No package matching 'ngnix' is available`},
		{"msg object", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "assert", false, map[string]any{"msg": map[string]any{"code": 42, "why": "bad"}})}
		}, `task "assert" failed on web1: {"code":42,"why":"bad"}`},
		{"msg list", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "check", false, map[string]any{"msg": []any{"one", "two"}})}
		}, `task "check" failed on web1: ["one","two"]`},
		{"non-zero return code with stderr", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "run script", false, map[string]any{"msg": "non-zero return code", "rc": 2,
				"stdout": "", "stderr": "  ls: cannot access '/nope': No such file or directory\n"})}
		}, `task "run script" failed on web1: non-zero return code: ls: cannot access '/nope': No such file or directory`},
		{"non-zero return code without stderr", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "run script", false, map[string]any{"msg": "non-zero return code", "rc": 1, "stderr": ""})}
		}, `task "run script" failed on web1: non-zero return code`},
		{"other msg with stderr keeps the msg", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "t", false, map[string]any{"msg": "MODULE FAILURE", "stderr": "Traceback"})}
		}, `task "t" failed on web1: MODULE FAILURE`},
		{"stderr only", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "t", false, map[string]any{"stderr": "permission denied\n"})}
		}, `task "t" failed on web1: permission denied`},
		{"no message", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "t", false, map[string]any{"rc": 1})}
		}, `task "t" failed on web1: no message`},
		{"unreachable", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{unreachable(t, "db1", "Gathering Facts", "Failed to connect to the host via ssh: timeout")}
		}, `host db1 unreachable in task "Gathering Facts": Failed to connect to the host via ssh: timeout`},
		{"ignored failure is no reason", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{failed(t, "web1", "t", true, map[string]any{"msg": "ignored"})}
		}, ""},
		{"two failures", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{
				failed(t, "web1", "deploy", false, map[string]any{"msg": "first"}),
				failed(t, "web2", "deploy", false, map[string]any{"msg": "second"}),
			}
		}, `task "deploy" failed on web1: first (and 1 more failures)`},
		{"failures and unreachable", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{
				unreachable(t, "db1", "ping", "down"),
				failed(t, "web1", "deploy", false, map[string]any{"msg": "first"}),
				failed(t, "web2", "deploy", nil, map[string]any{"msg": "second"}),
			}
		}, `host db1 unreachable in task "ping": down (and 2 more failures)`},
		{"task failure beats ERROR lines", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{verbose("ERROR! something odd"), failed(t, "web1", "t", false, map[string]any{"msg": "real"})}
		}, `task "t" failed on web1: real`},
		{"ERROR line", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{
				verbose("[WARNING]: provided hosts list is empty"),
				verbose("ERROR! the playbook: nope.yml could not be found\n"),
			}
		}, "ERROR! the playbook: nope.yml could not be found"},
		{"ERROR with its following lines", func(t *testing.T) []*schemas.Event {
			return []*schemas.Event{
				verbose("ERROR! conflicting action statements: shell, command"),
				verbose(""),
				verbose("The error appears to be in '/pb/site.yml': line 4, column 7, but may"),
				{Event: "error", Stdout: "be elsewhere in the file depending on the exact syntax problem."},
			}
		}, "ERROR! conflicting action statements: shell, command\n" +
			"The error appears to be in '/pb/site.yml': line 4, column 7, but may\n" +
			"be elsewhere in the file depending on the exact syntax problem."},
		{"ERROR text is bounded", func(t *testing.T) []*schemas.Event {
			evs := []*schemas.Event{verbose("ERROR! long")}
			for i := 0; i < 20; i++ {
				evs = append(evs, verbose("detail"))
			}
			return evs
		}, "ERROR! long" + strings.Repeat("\ndetail", 7)},
		{"no ERROR: the last lines of output", func(t *testing.T) []*schemas.Event {
			evs := []*schemas.Event{verbose("Using /etc/ansible/ansible.cfg as config file")}
			for i := range 6 {
				evs = append(evs, verbose(fmt.Sprintf("line %d", i)))
			}
			return append(evs, verbose("ansible-worker: cannot start ansible-playbook: no such file"))
		}, "line 2\nline 3\nline 4\nline 5\nansible-worker: cannot start ansible-playbook: no such file"},
		{"nothing at all", func(t *testing.T) []*schemas.Event { return nil }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := NewProgress()
			for _, e := range tc.events(t) {
				p.Observe(e)
			}
			require.Equal(t, tc.want, p.FailureReason())
		})
	}
}

func TestProgressSnapshotChanged(t *testing.T) {
	t.Parallel()
	p := NewProgress()
	_, _, changed := p.Snapshot()
	require.False(t, changed, "nothing observed yet")

	// Events that carry no figures do not mark a change.
	p.Observe(ev(t, "playbook_on_start", map[string]any{}))
	p.Observe(ev(t, "runner_on_start", map[string]any{"host": "h"}))
	p.Observe(verbose("ERROR! x"))
	_, _, changed = p.Snapshot()
	require.False(t, changed)

	for _, e := range []*schemas.Event{
		taskStart(t, "a"), ok(t, "h", "a", false), failed(t, "h", "a", true, map[string]any{}),
		skipped(t, "h", "a"), unreachable(t, "h", "a", "x"), setStats(t, map[string]any{"k": 1}),
		stats(t, nil, nil, nil, nil, nil),
	} {
		p.Observe(e)
		_, _, changed = p.Snapshot()
		require.True(t, changed, "after %s", e.Event)
		_, _, changed = p.Snapshot()
		require.False(t, changed, "a second Snapshot right after %s reports no change", e.Event)
	}
}

// Event data that is not a JSON object is ignored, never a panic.
func TestProgressBadEventData(t *testing.T) {
	t.Parallel()
	p := NewProgress()
	for _, name := range []string{"runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped", "playbook_on_stats"} {
		for _, data := range []string{``, `null`, `[]`, `"x"`, `{"res": 5}`, `{"ok": {"h": "one"}}`, `{`} {
			p.Observe(&schemas.Event{Event: name, EventData: json.RawMessage(data)})
		}
	}
	counts, out, _ := p.Snapshot()
	// Only the null documents decode (to nothing): the recap then sums to zero.
	require.Equal(t, schemas.Counts{}, counts)
	require.Equal(t, map[string]any{}, out)
}

func TestProgressConcurrent(t *testing.T) {
	t.Parallel()
	p := NewProgress()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				p.Observe(taskStart(t, "a"))
				p.Observe(ok(t, "h", "a", true))
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				p.Snapshot()
				p.FailureReason()
			}
		}()
	}
	wg.Wait()
	counts, _, _ := p.Snapshot()
	require.Equal(t, schemas.Counts{Total: 400, OK: 400, Changed: 400}, counts)
}

// The playbooks of a named job add up: each one's recap adds to those of
// the playbooks before, and its live counts go on from them.
func TestProgressNextPlaybookAddsUp(t *testing.T) {
	t.Parallel()
	p := NewProgress()
	p.Observe(taskStart(t, "ping"))
	p.Observe(ok(t, "web1", "ping", true))
	p.Observe(stats(t, map[string]int{"web1": 1}, map[string]int{"web1": 1}, nil, nil, nil))
	p.NextPlaybook()
	p.Observe(taskStart(t, "deploy"))
	p.Observe(ok(t, "web1", "deploy", false))
	got, _, _ := p.Snapshot()
	require.Equal(t, schemas.Counts{Total: 2, OK: 2, Changed: 1}, got, "live, after the first recap")
	p.Observe(stats(t, map[string]int{"web1": 1}, nil, nil, map[string]int{"web1": 1}, nil))
	got, _, _ = p.Snapshot()
	require.Equal(t, schemas.Counts{Total: 2, OK: 2, Changed: 1, Skipped: 1}, got)
}
