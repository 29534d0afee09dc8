package config

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// log_levels sets the level of the components it names, with the level
// names of log_level in any case.
func TestLogLevels(t *testing.T) {
	c, err := load(t, "log_level: info\nlog_levels:\n  nats: WARNING\n  worker: debug\n  cli: Critical\n", nil)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"nats": "WARNING", "worker": "debug", "cli": "Critical"}, c.LogLevels)
	require.Equal(t, map[string]slog.Level{"nats": slog.LevelWarn, "worker": slog.LevelDebug, "cli": slog.LevelError},
		c.ComponentLevels())

	c, err = load(t, "log_level: DEBUG\n", nil)
	require.NoError(t, err)
	require.Empty(t, c.LogLevels)
	require.Empty(t, c.ComponentLevels())
}

// An unknown component or level is a problem naming its key and line, and
// every problem comes out at once.
func TestLogLevelsProblems(t *testing.T) {
	_, err := load(t, "log_levels:\n  nats: LOUD\n  foo: INFO\n  mqtt: \"\"\nlog_format: xml\n", nil)
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, `config.yaml:2: log_levels.nats: unknown log level "LOUD": use DEBUG, INFO, WARNING or ERROR`)
	require.Contains(t, msg, "config.yaml:3: log_levels.foo: unknown component (known: worker, nats, mqtt, embedded, cli)")
	require.Contains(t, msg, "config.yaml:4: log_levels.mqtt: no level: use DEBUG, INFO, WARNING or ERROR")
	require.Contains(t, msg, "config.yaml:5: log_format:")

	_, err = load(t, "log_levels: [nats]\n", nil)
	require.ErrorContains(t, err, "config.yaml:1: log_levels: expected a mapping of keys to values, got a list")
	_, err = load(t, "log_levels:\n  nats: [INFO]\n", nil)
	require.ErrorContains(t, err, "config.yaml:2: log_levels.nats: expected a string, got a list")

	c := DefaultConfig()
	c.LogLevels = map[string]string{"Worker": "INFO", "embedded": "verbose"}
	err = c.Validate()
	require.ErrorContains(t, err, "log_levels.Worker: unknown component (known: worker, nats, mqtt, embedded, cli)")
	require.ErrorContains(t, err, `log_levels.embedded: unknown log level "verbose"`)
	require.Empty(t, c.ComponentLevels(), "nothing Validate refuses")
}

// A level from ${VAR} works like one written in the file.
func TestLogLevelsExpanded(t *testing.T) {
	c, err := load(t, "log_levels:\n  worker: ${WORKER_LEVEL:-INFO}\n", envMap{"WORKER_LEVEL": "WARN"})
	require.NoError(t, err)
	require.Equal(t, slog.LevelWarn, c.ComponentLevels()["worker"])
}
