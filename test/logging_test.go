package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// logLine is one line of a JSON log.
type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

// readJSONLog reads the log file at path: every line must be one JSON
// object with time, level and msg.
func readJSONLog(t testing.TB, path string) []logLine {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []logLine
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" && len(data) == 0 {
			break
		}
		var l logLine
		require.NoError(t, json.Unmarshal([]byte(line), &l), "%s:%d is not a JSON object: %q", path, i+1, line)
		for _, k := range []string{"time", "level", "msg"} {
			require.NotEmpty(t, l.str(k), "%s:%d has no %s: %q", path, i+1, k, line)
		}
		out = append(out, l)
	}
	return out
}

// findLine returns the first line with message msg and, when taskID is
// set, that task_id.
func findLine(lines []logLine, msg, taskID string) (logLine, bool) {
	for _, l := range lines {
		if l.str("msg") == msg && (taskID == "" || l.str("task_id") == taskID) {
			return l, true
		}
	}
	return nil, false
}

// waitLogLine polls the JSON log at path until it has the line.
func waitLogLine(t testing.TB, path, msg, taskID string) logLine {
	t.Helper()
	var found logLine
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if _, err := os.Stat(path); err != nil {
			return err
		}
		l, ok := findLine(readJSONLog(t, path), msg, taskID)
		if !ok {
			return fmt.Errorf("no %q line for task %q in %s yet", msg, taskID, path)
		}
		found = l
		return nil
	})
	return found
}

// submitQuick runs quick.yml as task id and waits for its success.
func submitQuick(t testing.TB, url, id string) {
	t.Helper()
	_, errOut, code := runCLI(t, "submit", "-s", url, "--task-id", id, "-p", "quick.yml", "-i", "inventory/hosts", "--wait", "--quiet")
	require.Equal(t, 0, code, errOut)
}

// With log_format: json and log_file, every line of the file is one JSON
// object with time, level and msg, and each carries its component: the
// worker's task lines "worker", the NATS connection's "nats".
func TestLoggingJSONFile(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	path := filepath.Join(t.TempDir(), "worker.log")
	startWorker(t, ns.url, workerOpts{TopExtra: "log_format: json\nlog_file: " + path + "\n"})
	submitQuick(t, ns.url, "json-log-1")

	finished := waitLogLine(t, path, "task finished", "json-log-1")
	require.Equal(t, "worker", finished.str("component"))
	require.Equal(t, "INFO", finished.str("level"))
	components := map[string]bool{}
	for _, l := range readJSONLog(t, path) {
		require.NotEmpty(t, l.str("component"), "a line without component: %v", l)
		components[l.str("component")] = true
	}
	require.True(t, components["worker"] && components["nats"], "components seen: %v", components)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Zero(t, st.Mode().Perm()&^0o640, "the log file is created 0640 at most")
}

// logrotate's "create" mode: the log file is renamed and the worker told
// with SIGHUP. The old file keeps what was logged before; what follows
// goes to a new file at the configured path; the worker goes on.
func TestLoggingReopenOnSIGHUP(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	path := filepath.Join(t.TempDir(), "worker.log")
	w := startWorker(t, ns.url, workerOpts{TopExtra: "log_format: json\nlog_file: " + path + "\n"})
	submitQuick(t, ns.url, "rotate-1")
	waitLogLine(t, path, "task finished", "rotate-1")

	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGHUP))
	waitLogLine(t, path, "log file reopened", "")
	submitQuick(t, ns.url, "rotate-2")
	waitLogLine(t, path, "task finished", "rotate-2")

	old := readJSONLog(t, path+".1")
	_, ok := findLine(old, "task finished", "rotate-1")
	require.True(t, ok, "the old file keeps the old lines")
	_, ok = findLine(old, "task finished", "rotate-2")
	require.False(t, ok, "nothing new goes to the renamed file")
	_, ok = findLine(readJSONLog(t, path), "task finished", "rotate-1")
	require.False(t, ok, "the new file starts at the reopen")
	requireRunning(t, w)
}

// requireRunning fails the test when the worker process has exited.
func requireRunning(t testing.TB, w *workerProc) {
	t.Helper()
	select {
	case <-w.done:
		t.Fatalf("worker %s exited:\n%s", w.id, w.logs.String())
	default:
	}
}

// textLine matches a line of the text log: its level, message and
// attributes.
var textLine = regexp.MustCompile(`^time=\S+ level=(\S+) msg=("(?:[^"\\]|\\.)*"|\S+)(.*)$`)

// log_levels: {worker: WARNING} hides the worker's INFO lines ("task
// finished") while the other components keep log_level (DEBUG here). A
// SIGHUP without a log file changes nothing and stops nothing.
func TestLoggingComponentLevels(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	w := startWorker(t, ns.url, workerOpts{TopExtra: "log_levels:\n  worker: WARNING\n"})
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGHUP))
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(w.logs.String(), `msg="SIGHUP received" component=cli`) {
			return fmt.Errorf("SIGHUP not logged yet")
		}
		return nil
	})
	submitQuick(t, ns.url, "levels-1")
	requireRunning(t, w)
	w.stop(t) // every line written

	levels := map[string]map[string]int{} // component -> level -> lines
	for _, line := range strings.Split(strings.TrimSpace(w.logs.String()), "\n") {
		m := textLine.FindStringSubmatch(line)
		require.NotNil(t, m, "not a log line: %q", line)
		c := regexp.MustCompile(`(?:^| )component=(\S+)`).FindStringSubmatch(m[3])
		require.NotNil(t, c, "a line without component: %q", line)
		if levels[c[1]] == nil {
			levels[c[1]] = map[string]int{}
		}
		levels[c[1]][m[1]]++
	}
	require.NotContains(t, w.logs.String(), `msg="task finished"`)
	require.Zero(t, levels["worker"]["INFO"]+levels["worker"]["DEBUG"], "worker lines below WARNING: %v", levels["worker"])
	require.NotZero(t, levels["cli"]["INFO"], "other components keep their INFO lines: %v", levels)
	require.NotZero(t, levels["nats"]["DEBUG"]+levels["nats"]["INFO"], "other components keep log_level DEBUG: %v", levels)
}

// The gateway command reopens its log file on SIGHUP too, and its lines
// carry component mqtt.
func TestLoggingGatewaySIGHUP(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	m := startMosquitto(t, mosqOpts{})
	path := filepath.Join(t.TempDir(), "gateway.log")
	gw := startWorker(t, ns.url, workerOpts{Command: "gateway",
		TopExtra: mqttSection(m, "log-gw", "") + "\nlog_format: json\nlog_file: " + path + "\n"})
	running := waitLogLine(t, path, "MQTT gateway running", "")
	require.Equal(t, "mqtt-gateway", running.str("component"))

	require.NoError(t, os.Rename(path, path+".1"))
	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGHUP))
	reopened := waitLogLine(t, path, "log file reopened", "")
	require.Equal(t, "cli", reopened.str("component"))
	_, ok := findLine(readJSONLog(t, path+".1"), "MQTT gateway running", "")
	require.True(t, ok)
	requireRunning(t, gw)
}
