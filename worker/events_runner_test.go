package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// The tests of this file run a playbook twice, under the real ansible-runner
// 2.3.1 (Debian's python3-ansible-runner) and under Process, each in a
// private data directory of ansible-runner's layout (project/<playbook>,
// inventory/hosts) with ansible-runner's command line, and compare the
// events. Paths differ only by the directory, which norm replaces.

// naiveUTC is the form of created, start and end in ansible-runner 2.3.1:
// datetime.utcnow().isoformat(), which leaves out a fraction of 0.
var naiveUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$`)

// ourNaiveUTC is ours: always six fractional digits.
var ourNaiveUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)

// textEventKeys are the keys of ansible-runner's verbose events made of
// text outside any event: no pid, no event_data.
var textEventKeys = []string{"event", "uuid", "counter", "stdout", "start_line", "end_line", "runner_ident", "created"}

// comparedRun is one side of a comparison.
type comparedRun struct {
	dir    string // the private data directory
	events []map[string]any
	pid    int // of ansible-playbook; 0 for ansible-runner's run
}

// layout makes dir a private data directory holding playbook and inventory.
func layout(dir, inventory, playbook string) error {
	for src, dst := range map[string]string{
		playbook:  filepath.Join(dir, "project", filepath.Base(playbook)),
		inventory: filepath.Join(dir, "inventory", "hosts"),
	} {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// processEvents runs the playbook with Process as ansible-runner would run
// it (`ansible-playbook ARGS -i DIR/inventory PLAYBOOK` in DIR/project) and
// returns its events as the JSON objects the worker publishes.
func processEvents(t *testing.T, dir, inventory, playbook string, color, warm bool, args ...string) (comparedRun, error) {
	run := comparedRun{dir: dir}
	if err := layout(dir, inventory, playbook); err != nil {
		return run, err
	}
	pluginDir, err := InstallCallback(filepath.Join(dir, "plugin"))
	if err != nil {
		return run, err
	}
	var encodeErr error
	p := &Process{
		Executable: testAnsiblePlaybook,
		Args:       append(append(append([]string{}, args...), "-i", filepath.Join(dir, "inventory")), filepath.Base(playbook)),
		Dir:        filepath.Join(dir, "project"),
		Env:        os.Environ(),
		PluginDir:  pluginDir,
		Ident:      "cmp",
		Color:      color,
		KillGrace:  5 * time.Second,
		OnStart:    func(pid int) { run.pid = pid },
		OnEvent: func(ev *schemas.Event) {
			b, err := json.Marshal(ev)
			var obj map[string]any
			if err == nil {
				err = json.Unmarshal(b, &obj)
			}
			if err != nil && encodeErr == nil {
				encodeErr = err
			}
			run.events = append(run.events, obj)
		},
	}
	if warm {
		p.Warm = startWarm(t, p).warm
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exit, err := p.Run(ctx)
	if err != nil {
		return run, err
	}
	if exit.Warm != warm {
		return run, fmt.Errorf("warm start: %v, wanted %v", exit.Warm, warm)
	}
	return run, encodeErr
}

// bothStarts runs test once with a cold start and once forked from a warm
// process: everything a test of a run checks holds for both.
func bothStarts(t *testing.T, test func(t *testing.T, warm bool)) {
	t.Parallel()
	for _, warm := range startModes {
		name := map[bool]string{false: "cold", true: "warm"}[warm]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, warm)
		})
	}
}

// compareWithRunner runs the playbook both ways at once; args go to
// ansible-playbook (ansible-runner's --cmdline).
func compareWithRunner(t *testing.T, warm bool, playbook string, args ...string) (ref, ours comparedRun) {
	t.Helper()
	inventory := testdataPath(t, "callback_hosts")
	playbook = testdataPath(t, playbook)
	ref.dir = t.TempDir()
	var (
		refErr error
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ref.events, refErr = runnerEventsArgs(ref.dir, inventory, playbook, args...)
	}()
	ours, err := processEvents(t, t.TempDir(), inventory, playbook, true, warm, args...)
	wg.Wait()
	require.NoError(t, refErr)
	require.NoError(t, err)
	return ref, ours
}

// norm is an event's stdout as compared: the private data directory
// replaced, and ansible-runner's terminal line ends (\r\n) as the worker's
// (\n).
func (r comparedRun) norm(ev map[string]any) string {
	s, _ := ev["stdout"].(string)
	s = strings.ReplaceAll(s, r.dir, "PDD")
	return strings.ReplaceAll(s, "\r\n", "\n")
}

func sortedKeys(m map[string]any) []string {
	keys := mapKeys(m)
	sort.Strings(keys)
	return keys
}

// parentIndexes maps each event to the index of the event its parent_uuid
// names (-1: none, -2: an uuid of no event), so parent trees compare across
// runs with different uuids.
func parentIndexes(events []map[string]any) []int {
	at := map[string]int{}
	for i, ev := range events {
		if u, ok := ev["uuid"].(string); ok {
			at[u] = i
		}
	}
	out := make([]int, len(events))
	for i, ev := range events {
		p, ok := ev["parent_uuid"].(string)
		switch j, found := at[p]; {
		case !ok:
			out[i] = -1
		case found:
			out[i] = j
		default:
			out[i] = -2
		}
	}
	return out
}

// requireSameJSON is require.Equal for values that may be too big for its
// diff: it shows their start.
func requireSameJSON(t *testing.T, want, got any, format string, args ...any) {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return
	}
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	t.Fatalf("%s\nwant %.500s\n got %.500s", fmt.Sprintf(format, args...), w, g)
}

// eventLabel names an event in messages.
func eventLabel(i int, ev map[string]any) string {
	return fmt.Sprintf("event %d %v %q", i, ev["event"], ev["stdout"])
}

// With colours on, every event is ansible-runner's: name, counter, line
// span, stdout byte for byte with the ANSI codes (line ends aside), keys,
// process (ansible-playbook or a forked worker), event_data keys and
// results, warning: true on warnings, parent tree; timestamps are naive
// UTC; a result of 120000 non-ASCII characters is kept, as ansible-runner
// keeps it.
func TestEventsMatchAnsibleRunnerWithColor(t *testing.T) {
	bothStarts(t, testEventsMatchAnsibleRunnerWithColor)
}

func testEventsMatchAnsibleRunnerWithColor(t *testing.T, warm bool) {
	ref, ours := compareWithRunner(t, warm, "events_fidelity.yml")
	want, got := ref.events, ours.events

	require.Equal(t, eventNames(want), eventNames(got))
	wantParents, gotParents := parentIndexes(want), parentIndexes(got)
	wantMain := want[0]["pid"]
	colored, bigChecked, warnings, workers := 0, false, 0, 0
	for i := range want {
		w, g := want[i], got[i]
		label := eventLabel(i, w)
		require.Equal(t, float64(i+1), g["counter"], label)
		require.Equal(t, w["counter"], g["counter"], label)
		require.Equal(t, w["start_line"], g["start_line"], label)
		require.Equal(t, w["end_line"], g["end_line"], label)
		require.Equal(t, ref.norm(w), ours.norm(g), "%s: stdout", label)
		if strings.Contains(ours.norm(g), "\x1b[") {
			colored++
		}
		require.Equal(t, sortedKeys(w), sortedKeys(g), "%s: keys", label)
		// ansible-playbook's, or a forked worker's.
		require.Equal(t, w["pid"] != wantMain, g["pid"] != float64(ours.pid), "%s: pid", label)
		if g["pid"] != float64(ours.pid) {
			workers++
		}
		require.Equal(t, wantParents[i], gotParents[i], "%s: parent", label)

		require.Regexp(t, naiveUTC, w["created"], "%s: ansible-runner's created", label)
		require.Regexp(t, ourNaiveUTC, g["created"], "%s: created", label)
		wd, gd := eventData(w), eventData(g)
		require.Equal(t, sortedKeys(wd), sortedKeys(gd), "%s: event_data keys", label)
		for _, k := range []string{"start", "end"} {
			if wd[k] != nil {
				require.Regexp(t, naiveUTC, wd[k], "%s: ansible-runner's %s", label, k)
				require.Regexp(t, ourNaiveUTC, gd[k], "%s: %s", label, k)
			}
		}
		for _, k := range []string{"task", "host", "remote_addr", "name", "is_conditional", "ignore_errors",
			"event_loop", "play_pattern", "artifact_data", "ok", "changed", "failures", "skipped", "ignored"} {
			require.Equal(t, wd[k], gd[k], "%s: event_data.%s", label, k)
		}
		if wd["task"] == "Big non-ASCII result" && w["event"] == "runner_on_ok" {
			bigChecked = true
			res, _ := gd["res"].(map[string]any)
			msg, _ := res["msg"].(string)
			require.True(t, msg == strings.Repeat("é", 120000), "the result is kept, not %.200s", gd["res"])
		}
		requireSameJSON(t, wd["res"], gd["res"], "%s: event_data.res", label)
		if w["event"] == "warning" {
			warnings++
			require.Equal(t, true, gd["warning"], label)
		}
	}
	require.True(t, bigChecked, "the playbook has the big result")
	require.Equal(t, 2, warnings, "the playbook has a warning of the main process and one of a worker")
	require.Equal(t, 1, workers, "the worker's warning")
	require.Greater(t, colored, 10, "the text has colours")
}

// -vvv: the lines Ansible prints before it loads the callback plugin are
// verbose events without pid and event_data; Display.verbose in the main
// process gives verbose events marked verbose: true with a verbosity;
// every display of a forked worker gives an event of the worker (its pid,
// the task context, verbose: true, remote_addr, no text) besides the
// event of the main process that shows the text. As ansible-runner.
func TestVerboseEventsMatchAnsibleRunner(t *testing.T) {
	bothStarts(t, testVerboseEventsMatchAnsibleRunner)
}

func testVerboseEventsMatchAnsibleRunner(t *testing.T, warm bool) {
	ref, ours := compareWithRunner(t, warm, "events_verbose.yml", "-vvv")
	require.Equal(t, len(ref.events), len(ours.events), "as many events\nansible-runner: %v\nours: %v",
		eventNames(ref.events), eventNames(ours.events))

	// The main process is the one of playbook_on_start.
	mainPID := func(r comparedRun) any {
		for _, ev := range r.events {
			if ev["event"] == "playbook_on_start" {
				return ev["pid"]
			}
		}
		t.Fatal("no playbook_on_start")
		return nil
	}
	type split struct {
		text, mainVerbose, workerVerbose, shown, other []map[string]any
	}
	classify := func(r comparedRun) split {
		var s split
		main := mainPID(r)
		for _, ev := range r.events {
			switch {
			case ev["pid"] == nil:
				s.text = append(s.text, ev)
			case ev["event"] != "verbose":
				s.other = append(s.other, ev)
			case ev["pid"] != main:
				s.workerVerbose = append(s.workerVerbose, ev)
			case eventData(ev)["verbose"] == true:
				s.mainVerbose = append(s.mainVerbose, ev)
			default:
				s.shown = append(s.shown, ev)
			}
		}
		return s
	}
	want, got := classify(ref), classify(ours)
	require.Equal(t, eventNames(want.other), eventNames(got.other))

	// Before the plugin: Ansible's header and the inventory's messages.
	require.NotEmpty(t, want.text)
	require.Len(t, got.text, len(want.text))
	require.Equal(t, "\x1b[0;34mansible-playbook [core 2.14.18]\x1b[0m", got.text[0]["stdout"])
	for i := range want.text {
		require.ElementsMatch(t, textEventKeys, mapKeys(want.text[i]), "ansible-runner's text event %d", i)
		require.ElementsMatch(t, textEventKeys, mapKeys(got.text[i]), eventLabel(i, got.text[i]))
		require.Equal(t, ref.norm(want.text[i]), ours.norm(got.text[i]))
		require.Regexp(t, ourNaiveUTC, got.text[i]["created"])
	}
	// They come first, in the same lines.
	for i, ev := range got.text {
		require.Equal(t, float64(i+1), ev["counter"])
		require.Equal(t, want.text[i]["start_line"], ev["start_line"])
	}

	// Display.verbose of the main process ("Skipping callback ...", "1 plays
	// in ..."): the plugin's name aside, the same.
	require.NotEmpty(t, want.mainVerbose)
	require.Len(t, got.mainVerbose, len(want.mainVerbose))
	for i := range want.mainVerbose {
		w, g := want.mainVerbose[i], got.mainVerbose[i]
		label := eventLabel(i, g)
		require.Equal(t, strings.ReplaceAll(ref.norm(w), "awx_display", CallbackPluginName), ours.norm(g), label)
		require.Equal(t, sortedKeys(w), sortedKeys(g), label)
		require.Equal(t, sortedKeys(eventData(w)), sortedKeys(eventData(g)), label)
		require.Equal(t, w["verbosity"], g["verbosity"], label)
		require.Equal(t, true, eventData(g)["verbose"], label)
	}

	// The worker's own events, one per display of the forked worker.
	require.NotEmpty(t, want.workerVerbose)
	require.Len(t, got.workerVerbose, len(want.workerVerbose))
	remote := 0
	for i := range want.workerVerbose {
		w, g := want.workerVerbose[i], got.workerVerbose[i]
		wd, gd := eventData(w), eventData(g)
		label := eventLabel(i, g)
		require.Equal(t, sortedKeys(w), sortedKeys(g), label)
		require.Equal(t, sortedKeys(wd), sortedKeys(gd), label)
		require.Equal(t, "", g["stdout"], label)
		require.Equal(t, g["start_line"], g["end_line"], label)
		require.NotEqual(t, float64(ours.pid), g["pid"], "%s: the worker's pid", label)
		require.Equal(t, w["verbosity"], g["verbosity"], label)
		require.Equal(t, true, gd["verbose"], label)
		require.Equal(t, wd["remote_addr"], gd["remote_addr"], label)
		require.Equal(t, "Run a command", gd["task"], label)
		require.Equal(t, wd["task_action"], gd["task_action"], label)
		require.Equal(t, gd["task_uuid"], g["parent_uuid"], label)
		require.Regexp(t, ourNaiveUTC, g["created"], label)
		if gd["remote_addr"] == "localhost" {
			remote++
		}
	}
	require.Positive(t, remote, "events with remote_addr")

	// The text the workers displayed, shown by the main process.
	require.Len(t, got.shown, len(want.shown))
	var wantShown, gotShown []string
	for i := range want.shown {
		wantShown = append(wantShown, ref.norm(want.shown[i]))
		gotShown = append(gotShown, ours.norm(got.shown[i]))
		require.Equal(t, sortedKeys(eventData(want.shown[i])), sortedKeys(eventData(got.shown[i])), eventLabel(i, got.shown[i]))
	}
	require.Contains(t, gotShown, "\x1b[0;34m<localhost> ESTABLISH LOCAL CONNECTION FOR USER: "+currentUser(t)+"\x1b[0m")
	require.Equal(t, wantShown[0], gotShown[0])
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	require.NoError(t, err)
	return u.Username
}

// A playbook Ansible cannot parse: the error, in colour, is all there is,
// one verbose event per line without pid and event_data, as ansible-runner's.
func TestSyntaxErrorEventsMatchAnsibleRunner(t *testing.T) {
	bothStarts(t, testSyntaxErrorEventsMatchAnsibleRunner)
}

func testSyntaxErrorEventsMatchAnsibleRunner(t *testing.T, warm bool) {
	ref, ours := compareWithRunner(t, warm, "events_syntax_error.yml")
	require.Len(t, ours.events, len(ref.events))
	require.Greater(t, len(ours.events), 5)
	for i := range ref.events {
		w, g := ref.events[i], ours.events[i]
		label := eventLabel(i, g)
		require.ElementsMatch(t, textEventKeys, mapKeys(w), "ansible-runner's %s", label)
		require.ElementsMatch(t, textEventKeys, mapKeys(g), label)
		require.Equal(t, "verbose", g["event"], label)
		require.Equal(t, ref.norm(w), ours.norm(g), label)
		require.Equal(t, w["start_line"], g["start_line"], label)
		require.Equal(t, w["end_line"], g["end_line"], label)
		require.Regexp(t, ourNaiveUTC, g["created"], label)
	}
	require.Equal(t, "\x1b[0;31mERROR! We were unable to read either as JSON nor YAML, these are the errors we got from each:\x1b[0m",
		ours.events[0]["stdout"])
}
