package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The system ansible (python3-ansible-core): `python3` on PATH may be a
// pyenv without ansible, and ansible-runner spawns this one too.
const (
	testAnsiblePlaybook = "/usr/bin/ansible-playbook"
	testAnsibleRunner   = "/usr/bin/ansible-runner"
	testCensored        = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
)

// callbackRun is one ansible-playbook run with the plugin.
type callbackRun struct {
	events []map[string]any // side-channel objects, in order
	raw    []byte           // side-channel bytes as read
	stdout string
	stderr string
	exit   int
	pid    int
}

// runWithCallback runs ansible-playbook with the plugin installed under
// pluginParent; withFD decides whether the event pipe is passed as fd 3.
func runWithCallback(pluginParent, inventory, playbook string, withFD bool) (callbackRun, error) {
	var run callbackRun
	dir, err := InstallCallback(pluginParent)
	if err != nil {
		return run, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testAnsiblePlaybook, "-i", inventory, playbook)
	env := CallbackEnv(dir, 3)
	var r, w *os.File
	if withFD {
		if r, w, err = os.Pipe(); err != nil {
			return run, err
		}
		defer r.Close()
		cmd.ExtraFiles = []*os.File{w}
	} else {
		kept := env[:0]
		for _, kv := range env {
			if !strings.HasPrefix(kv, "ANSIBLE_WORKER_EVENT_FD=") {
				kept = append(kept, kv)
			}
		}
		env = kept
	}
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		if w != nil {
			w.Close()
		}
		return run, err
	}
	run.pid = cmd.Process.Pid
	if withFD {
		// Only the child may hold the write end, or EOF never comes.
		w.Close()
		if run.raw, err = io.ReadAll(r); err != nil {
			return run, err
		}
	}
	werr := cmd.Wait()
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return run, werr
	}
	run.exit = cmd.ProcessState.ExitCode()
	run.stdout, run.stderr = stdout.String(), stderr.String()
	for i, line := range bytes.SplitAfter(run.raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[len(line)-1] != '\n' {
			return run, fmt.Errorf("event line %d is not newline-terminated: %q", i+1, line)
		}
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			return run, fmt.Errorf("event line %d: %w: %q", i+1, err, line)
		}
		run.events = append(run.events, obj)
	}
	return run, nil
}

// runPlaybook is runWithCallback for one test, with the event pipe.
func runPlaybook(t *testing.T, inventory, playbook string) callbackRun {
	t.Helper()
	run, err := runWithCallback(t.TempDir(), inventory, playbook, true)
	require.NoError(t, err, "stderr: %s", run.stderr)
	return run
}

// The sequence playbook's run is shared by two tests: ansible runs are the
// slow part of this file.
var sequenceRun struct {
	once sync.Once
	run  callbackRun
	err  error
}

func sharedSequenceRun(t *testing.T) callbackRun {
	t.Helper()
	sequenceRun.once.Do(func() {
		dir, err := os.MkdirTemp("", "callback-test-")
		if err != nil {
			sequenceRun.err = err
			return
		}
		defer os.RemoveAll(dir)
		sequenceRun.run, sequenceRun.err = runWithCallback(dir,
			testdataPath(t, "callback_hosts"), testdataPath(t, "callback_sequence.yml"), true)
	})
	require.NoError(t, sequenceRun.err, "stderr: %s", sequenceRun.run.stderr)
	return sequenceRun.run
}

func testdataPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	require.NoError(t, err)
	return p
}

func eventData(ev map[string]any) map[string]any {
	ed, _ := ev["event_data"].(map[string]any)
	return ed
}

func eventNames(events []map[string]any) []string {
	names := make([]string, len(events))
	for i, ev := range events {
		names[i], _ = ev["event"].(string)
	}
	return names
}

// checkEnvelope verifies the fields every side-channel event carries, and
// that the stream ends with exactly one __eof__ line. It returns the events
// without that line.
func checkEnvelope(t *testing.T, run callbackRun) []map[string]any {
	t.Helper()
	require.NotEmpty(t, run.events)
	last := run.events[len(run.events)-1]
	require.Equal(t, map[string]any{"event": "__eof__"}, last, "stream must end with the eof marker")
	events := run.events[:len(run.events)-1]
	var playbookUUID string
	for i, ev := range events {
		name, _ := ev["event"].(string)
		require.NotEqual(t, "__eof__", name, "eof marker before the end (event %d)", i)
		uuid, _ := ev["uuid"].(string)
		require.NotEmpty(t, uuid, "event %d %s has no uuid", i, name)
		require.Equal(t, float64(run.pid), ev["pid"], "event %d %s pid", i, name)
		// Naive UTC, as ansible-runner 2.3.1 writes it.
		created, _ := ev["created"].(string)
		require.Regexp(t, ourNaiveUTC, created, "event %d %s created", i, name)
		_, err := time.Parse("2006-01-02T15:04:05", created)
		require.NoError(t, err)
		_, isText := ev["stdout"].(string)
		require.True(t, isText, "event %d %s has no stdout string", i, name)
		ed := eventData(ev)
		require.NotNil(t, ed, "event %d %s has no event_data", i, name)
		require.Equal(t, uuid, ed["uuid"], "event_data repeats the uuid")
		require.NotContains(t, ev, "verbosity", "only Display.verbose events have a verbosity")
		if name == "playbook_on_start" {
			playbookUUID = uuid
			require.NotContains(t, ev, "parent_uuid")
		} else {
			require.NotEmpty(t, ev["parent_uuid"], "event %d %s has no parent_uuid", i, name)
		}
		require.Equal(t, playbookUUID, ed["playbook_uuid"], "event %d %s playbook_uuid", i, name)
		// parent_uuid: first of task, play, playbook uuid that is not our own.
		var want any
		for _, k := range []string{"task_uuid", "play_uuid", "playbook_uuid"} {
			if v, ok := ed[k].(string); ok && v != "" && v != uuid {
				want = v
				break
			}
		}
		require.Equal(t, want, ev["parent_uuid"], "event %d %s parent_uuid", i, name)
	}
	return events
}

// runnerEvents runs the playbook under the real ansible-runner and returns
// its job events ordered by counter. It reports errors instead of failing
// the test so it can run on its own goroutine.
func runnerEvents(workDir, inventory, playbook string) ([]map[string]any, error) {
	return runnerEventsArgs(workDir, inventory, playbook)
}

// runnerEventsArgs is runnerEvents with arguments for ansible-playbook
// (ansible-runner's --cmdline). A failing playbook is no error: its events
// are what counts.
func runnerEventsArgs(workDir, inventory, playbook string, args ...string) ([]map[string]any, error) {
	if err := layout(workDir, inventory, playbook); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := []string{"run", workDir, "-p", filepath.Base(playbook), "--ident", "seq"}
	if len(args) > 0 {
		argv = append(argv, "--cmdline="+strings.Join(args, " "))
	}
	cmd := exec.CommandContext(ctx, testAnsibleRunner, argv...)
	// Ansible colours the terminal ansible-runner gives it only when curses
	// knows the terminal has colours.
	cmd.Env = append(os.Environ(), "TERM=xterm")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, fmt.Errorf("ansible-runner: %w: %s", err, out)
	}

	files, err := filepath.Glob(filepath.Join(workDir, "artifacts", "seq", "job_events", "*.json"))
	if err != nil {
		return nil, err
	}
	var events []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if _, ok := ev["counter"].(float64); !ok {
			return nil, fmt.Errorf("%s: no counter", f)
		}
		events = append(events, ev)
	}
	sort.Slice(events, func(i, j int) bool {
		return events[i]["counter"].(float64) < events[j]["counter"].(float64)
	})
	if len(events) == 0 {
		return nil, errors.New("ansible-runner recorded no job events")
	}
	return events, nil
}

func TestCallbackSequenceMatchesAnsibleRunner(t *testing.T) {
	inventory := testdataPath(t, "callback_hosts")
	playbook := testdataPath(t, "callback_sequence.yml")

	// The two runs are independent: overlap them.
	var (
		ref    []map[string]any
		refErr error
		wg     sync.WaitGroup
	)
	runnerDir := t.TempDir()
	wg.Add(1)
	go func() {
		defer wg.Done()
		ref, refErr = runnerEvents(runnerDir, inventory, playbook)
	}()
	run := sharedSequenceRun(t)
	wg.Wait()
	require.NoError(t, refErr)
	require.Equal(t, 0, run.exit, "stdout: %s\nstderr: %s", run.stdout, run.stderr)
	got := checkEnvelope(t, run)

	require.Equal(t, eventNames(ref), eventNames(got))
	for i := range ref {
		want, have := ref[i], got[i]
		wd, hd := eventData(want), eventData(have)
		name := want["event"]
		require.Equal(t, wd["task"], hd["task"], "event %d %s task", i, name)
		require.Equal(t, wd["host"], hd["host"], "event %d %s host", i, name)
		require.Equal(t, want["parent_uuid"] != nil, have["parent_uuid"] != nil, "event %d %s parent_uuid presence", i, name)
		for _, k := range []string{"playbook_uuid", "play_uuid", "task_uuid"} {
			require.Equal(t, wd[k] != nil, hd[k] != nil, "event %d %s %s presence", i, name, k)
		}
		// Same event_data fields, whatever their values.
		require.ElementsMatch(t, mapKeys(wd), mapKeys(hd), "event %d %s event_data keys", i, name)
	}

	wantStats, haveStats := eventData(ref[len(ref)-1]), eventData(got[len(got)-1])
	for _, k := range []string{"ok", "changed", "failures", "skipped", "ignored", "dark", "processed", "rescued"} {
		require.Equal(t, wantStats[k], haveStats[k], "stats %s", k)
	}
	require.Equal(t, map[string]any{"a": float64(3), "b": "x"}, haveStats["artifact_data"])
	require.Equal(t, wantStats["artifact_data"], haveStats["artifact_data"])
	require.Equal(t, map[string]any{"localhost": float64(1)}, haveStats["ignored"])
}

func mapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestCallbackStdout(t *testing.T) {
	run := sharedSequenceRun(t)
	events := checkEnvelope(t, run)

	var joined strings.Builder
	for _, ev := range events {
		switch ev["event"] {
		case "warning", "deprecated", "error", "system_warning":
			continue // Display sends these to stderr
		}
		joined.WriteString(ev["stdout"].(string))
	}
	// Captured text travels only in the events: the real stdout stays
	// empty, so the worker never sees it twice.
	require.Empty(t, run.stdout)
	for _, s := range []string{"PLAY [First play]", "TASK [Say hello]", "RUNNING HANDLER [Report change]", "PLAY RECAP"} {
		require.Contains(t, joined.String(), s)
	}

	oks := 0
	for _, ev := range events {
		ed := eventData(ev)
		if ev["event"] != "runner_on_ok" || ed["task"] != "Say hello" {
			continue
		}
		oks++
		require.Contains(t, ev["stdout"], "ok: [localhost] => {")
		require.Contains(t, ev["stdout"], "hello from the worker")
		res := ed["res"].(map[string]any)
		require.Equal(t, "hello from the worker", res["msg"])
		require.Equal(t, "", ed["task_args"])
		require.Equal(t, "ansible.builtin.debug", ed["resolved_action"])
		require.Greater(t, ed["duration"].(float64), 0.0)
		for _, k := range []string{"start", "end"} {
			ts, _ := ed[k].(string)
			require.Regexp(t, ourNaiveUTC, ts, k)
			_, err := time.Parse("2006-01-02T15:04:05", ts)
			require.NoError(t, err, "%s %q", k, ts)
		}
	}
	require.Equal(t, 1, oks)

	// Every event's text is its own: banners sit in the start events.
	byName := map[string]string{}
	for _, ev := range events {
		byName[ev["event"].(string)] += ev["stdout"].(string)
	}
	require.Contains(t, byName["playbook_on_play_start"], "PLAY [Second play]")
	require.Contains(t, byName["playbook_on_task_start"], "TASK [Loop over items]")
	require.Contains(t, byName["runner_item_on_ok"], "(item=two)")
	require.Contains(t, byName["runner_on_skipped"], "skipping: [localhost]")
	require.Contains(t, byName["runner_on_failed"], "...ignoring")
	require.Contains(t, byName["playbook_on_stats"], "PLAY RECAP")
	require.Empty(t, byName["runner_on_start"])
}

func TestCallbackFailingPlaybook(t *testing.T) {
	run := runPlaybook(t, testdataPath(t, "callback_hosts"), testdataPath(t, "callback_fail.yml"))
	require.Equal(t, 2, run.exit, "stdout: %s\nstderr: %s", run.stdout, run.stderr)
	events := checkEnvelope(t, run)

	names := eventNames(events)
	require.Equal(t, []string{
		"playbook_on_start",
		"warning", // no host matches: said outside any callback
		"playbook_on_play_start", "playbook_on_no_hosts_matched",
		"playbook_on_play_start", "playbook_on_task_start", "runner_on_start", "runner_on_failed",
		"playbook_on_stats",
	}, names)

	warning := events[1]
	require.Contains(t, warning["stdout"], "[WARNING]: Could not match supplied host pattern")
	require.NotContains(t, run.stderr, "[WARNING]: Could not match supplied host pattern", "captured text is not printed twice")

	failed := eventData(events[7])
	require.Equal(t, "Blow up", failed["task"])
	require.Equal(t, "localhost", failed["host"])
	// ansible 2.14 passes the task's unset ignore_errors as None, and
	// ansible-runner records that null too.
	require.Contains(t, failed, "ignore_errors")
	require.Nil(t, failed["ignore_errors"])
	require.Equal(t, "boom", failed["res"].(map[string]any)["msg"])
	require.Contains(t, events[7]["stdout"], "fatal: [localhost]: FAILED!")

	stats := eventData(events[len(events)-1])
	require.Equal(t, map[string]any{"localhost": float64(1)}, stats["failures"])
	require.NotContains(t, stats, "play", "stats carry no play context")
}

func TestCallbackNoLog(t *testing.T) {
	const secret = "hunter2-s3cr3t-7f1c"
	run := runPlaybook(t, testdataPath(t, "callback_hosts"), testdataPath(t, "callback_nolog.yml"))
	require.Equal(t, 0, run.exit, "stdout: %s\nstderr: %s", run.stdout, run.stderr)
	events := checkEnvelope(t, run)

	require.NotContains(t, string(run.raw), secret)
	found := false
	for _, ev := range events {
		ed := eventData(ev)
		if ev["event"] == "runner_on_ok" && ed["task"] == "Use the secret" {
			found = true
			res := ed["res"].(map[string]any)
			require.Equal(t, testCensored, res["censored"])
			require.NotContains(t, res, "stdout")
			require.NotContains(t, res, "cmd")
		}
	}
	require.True(t, found, "no runner_on_ok for the no_log task in %v", eventNames(events))
}

func TestCallbackWithoutEventFD(t *testing.T) {
	run, err := runWithCallback(t.TempDir(), testdataPath(t, "callback_hosts"), testdataPath(t, "callback_nolog.yml"), false)
	require.NoError(t, err)
	require.Equal(t, 0, run.exit, "stdout: %s\nstderr: %s", run.stdout, run.stderr)
	require.NotContains(t, run.stderr, "ansible_worker")
	require.NotContains(t, run.stderr, "callback plugin")
	for _, s := range []string{"PLAY [Secrets]", "TASK [Plain task]", "ok: [localhost] => {", "nothing to hide", "PLAY RECAP"} {
		require.Contains(t, run.stdout, s)
	}
}

func TestCallbackInstall(t *testing.T) {
	parent := t.TempDir()
	const n = 8
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = InstallCallback(parent)
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, dirs[0], dirs[i])
	}
	require.Equal(t, parent, filepath.Dir(dirs[0]))
	require.Regexp(t, `^callback-[0-9a-f]{8}$`, filepath.Base(dirs[0]))

	b, err := os.ReadFile(filepath.Join(dirs[0], CallbackPluginName+".py"))
	require.NoError(t, err)
	require.Equal(t, callbackSource, b)
	entries, err := os.ReadDir(dirs[0])
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{CallbackPluginName + ".py", "__pycache__"}, names, "no temp files left behind")

	// A damaged copy is replaced; an intact one is kept.
	target := filepath.Join(dirs[0], CallbackPluginName+".py")
	require.NoError(t, os.WriteFile(target, []byte("broken"), 0o644))
	again, err := InstallCallback(parent)
	require.NoError(t, err)
	require.Equal(t, dirs[0], again)
	b, err = os.ReadFile(target)
	require.NoError(t, err)
	require.Equal(t, callbackSource, b)

	env := CallbackEnv(again, 3)
	require.Contains(t, env, "ANSIBLE_CALLBACK_PLUGINS="+again)
	require.Contains(t, env, "ANSIBLE_STDOUT_CALLBACK=ansible_worker")
	require.Contains(t, env, "ANSIBLE_WORKER_EVENT_FD=3")
	require.Contains(t, env, "PYTHONUNBUFFERED=1")
	require.Contains(t, env, "ANSIBLE_NOCOLOR=1")
	require.NotContains(t, env, "ANSIBLE_FORCE_COLOR=1")
	colored := callbackEnv(again, 3, true)
	require.Contains(t, colored, "ANSIBLE_FORCE_COLOR=1")
	require.NotContains(t, colored, "ANSIBLE_NOCOLOR=1")
}
