package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/config"
)

// jsonLines decodes every line of buf, each of which must be a JSON object.
func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

func testLogger(buf *bytes.Buffer, def slog.Level, by map[string]slog.Level) *slog.Logger {
	levels := componentLevels{def: def, by: by}
	inner := slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: levels.lowest()})
	return slog.New(newComponentHandler(inner, levels)).With(componentKey, config.LogCLI)
}

// A line's level is its component's (log_levels), else log_level's; the
// component is known from log.With before the record is.
func TestComponentLevels(t *testing.T) {
	var buf bytes.Buffer
	log := testLogger(&buf, slog.LevelInfo, map[string]slog.Level{"worker": slog.LevelWarn, "nats": slog.LevelDebug})
	wlog := log.With(componentKey, "worker", "worker_id", "w1")
	nlog := log.With(componentKey, "nats")
	mlog := log.With(componentKey, "mqtt")

	wlog.Info("hidden: worker is at WARNING")
	wlog.Warn("worker warning")
	nlog.Debug("nats debug")
	mlog.Debug("hidden: mqtt is at log_level")
	mlog.Info("mqtt info")
	log.Debug("hidden: cli is at log_level")
	log.Info("cli info")
	require.False(t, wlog.Enabled(t.Context(), slog.LevelInfo))
	require.True(t, nlog.Enabled(t.Context(), slog.LevelDebug))

	lines := jsonLines(t, &buf)
	var got []string
	for _, l := range lines {
		got = append(got, l["component"].(string)+": "+l["msg"].(string))
	}
	require.Equal(t, []string{"worker: worker warning", "nats: nats debug", "mqtt: mqtt info", "cli: cli info"}, got)
	require.Equal(t, "w1", lines[0]["worker_id"])
}

// A component a part of the program sets under a known one ("nats-server"
// under embedded) keeps the known one's level and is the only component
// the line shows; a record's own component wins over the handler's.
func TestComponentRefined(t *testing.T) {
	var buf bytes.Buffer
	log := testLogger(&buf, slog.LevelInfo, map[string]slog.Level{"embedded": slog.LevelWarn, "mqtt": slog.LevelDebug})
	srv := log.With(componentKey, "embedded").With(componentKey, "nats-server", "port", 4222)
	srv.Info("hidden: embedded is at WARNING")
	srv.Warn("server warning")
	log.With(componentKey, "mqtt").Debug("gateway running", componentKey, "mqtt-gateway")
	log.With(componentKey, "unknown-part").Debug("hidden: no known component but cli")

	lines := jsonLines(t, &buf)
	require.Len(t, lines, 2, buf.String())
	require.Equal(t, "nats-server", lines[0]["component"])
	require.EqualValues(t, 4222, lines[0]["port"])
	require.Equal(t, "mqtt-gateway", lines[1]["component"])
	require.Equal(t, 1, strings.Count(strings.Split(buf.String(), "\n")[0], `"component"`), "one component per line")
	require.Equal(t, 1, strings.Count(strings.Split(buf.String(), "\n")[1], `"component"`), "one component per line")
}

// Groups keep the component outside them; a "component" inside a group is
// an ordinary attribute.
func TestComponentGroups(t *testing.T) {
	var buf bytes.Buffer
	log := testLogger(&buf, slog.LevelInfo, map[string]slog.Level{"worker": slog.LevelError})
	g := log.With(componentKey, "nats").WithGroup("task").With(componentKey, "worker", "id", "t1")
	g.Info("in a group", "n", 1)
	lines := jsonLines(t, &buf)
	require.Len(t, lines, 1, "the group's component does not set the level")
	require.Equal(t, "nats", lines[0]["component"])
	require.Equal(t, map[string]any{"component": "worker", "id": "t1", "n": float64(1)}, lines[0]["task"])
}

// newLogger writes JSON lines, one object each, with log_levels applied,
// to the log file; Reopen moves to a new file at the same path after a
// rename, and the old file keeps its lines.
func TestNewLoggerReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "worker.log")
	cfg := config.DefaultConfig()
	cfg.LogFormat, cfg.LogFile = "json", path
	cfg.LogLevels = map[string]string{"worker": "ERROR"}
	log, out, err := newLogger(cfg)
	require.NoError(t, err)
	defer out.Close()

	log.Info("before")
	log.With(componentKey, config.LogWorker).Warn("hidden")
	require.NoError(t, os.Rename(path, path+".1"))
	reopenLogHook(out, log)()
	log.Info("after")

	old, err := os.ReadFile(path + ".1")
	require.NoError(t, err)
	cur, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, []string{"before"}, msgs(t, old))
	require.Equal(t, []string{"log file reopened", "after"}, msgs(t, cur))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Zero(t, st.Mode().Perm()&^0o640, "created 0640 at most")

	require.NoError(t, out.Close())
	require.NoError(t, out.Reopen(), "closed: nothing to reopen")
}

// msgs are the messages of JSON log lines, each with time, level, msg and
// a component.
func msgs(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	for _, l := range jsonLines(t, bytes.NewBuffer(data)) {
		for _, k := range []string{"time", "level", "msg", "component"} {
			require.Contains(t, l, k)
		}
		out = append(out, l["msg"].(string))
	}
	return out
}

// A failed reopen leaves the log in the file it was in.
func TestReopenFails(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	require.NoError(t, os.Mkdir(sub, 0o755))
	path := filepath.Join(sub, "worker.log")
	out, err := openLogOutput(path)
	require.NoError(t, err)
	defer out.Close()
	require.NoError(t, os.Rename(sub, filepath.Join(dir, "moved")))
	require.Error(t, out.Reopen())
	_, err = out.Write([]byte("still logged\n"))
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "moved", "worker.log"))
	require.NoError(t, err)
	require.Equal(t, "still logged\n", string(data))

	none, err := openLogOutput("")
	require.NoError(t, err)
	require.NoError(t, none.Reopen(), "standard error: nothing to reopen")
}
