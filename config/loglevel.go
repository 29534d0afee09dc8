package config

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
)

// The components log_levels may set the level of. Each is the value of the
// "component" attribute of the log lines of that part of the program.
const (
	// LogWorker is the task lifecycle.
	LogWorker = "worker"
	// LogNATS is the NATS connection, publishing and provisioning.
	LogNATS = "nats"
	// LogMQTT is the MQTT gateway and the MQTT status topics.
	LogMQTT = "mqtt"
	// LogEmbedded is the embedded nats-server.
	LogEmbedded = "embedded"
	// LogCLI is everything else.
	LogCLI = "cli"
)

// LogComponents returns the components log_levels may name, in the order
// the documentation lists them.
func LogComponents() []string {
	return []string{LogWorker, LogNATS, LogMQTT, LogEmbedded, LogCLI}
}

// ParseLogLevel parses a log_level value: DEBUG, INFO, WARNING or WARN,
// ERROR, or CRITICAL (the same as ERROR), in any case.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO", "":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR", "CRITICAL":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("unknown log level %q: use DEBUG, INFO, WARNING or ERROR", s)
}

// SlogLevel returns the slog level of LogLevel (INFO when it is unknown;
// Validate rejects unknown levels).
func (c *Config) SlogLevel() slog.Level {
	l, _ := ParseLogLevel(c.LogLevel)
	return l
}

// ComponentLevels returns the slog level of every component log_levels
// names. Unknown components and levels are left out: Validate rejects
// them.
func (c *Config) ComponentLevels() map[string]slog.Level {
	out := make(map[string]slog.Level, len(c.LogLevels))
	for name, level := range c.LogLevels {
		l, err := ParseLogLevel(level)
		if err == nil && strings.TrimSpace(level) != "" && slices.Contains(LogComponents(), name) {
			out[name] = l
		}
	}
	return out
}

// logLevelsProblems returns the problems of log_levels, by key in
// alphabetical order.
func logLevelsProblems(levels map[string]string) problems {
	var p problems
	for _, name := range slices.Sorted(maps.Keys(levels)) {
		key := "log_levels." + name
		switch level := levels[name]; {
		case !slices.Contains(LogComponents(), name):
			p.addf("%s: unknown component (known: %s)", key, strings.Join(LogComponents(), ", "))
		case strings.TrimSpace(level) == "":
			p.addf("%s: no level: use DEBUG, INFO, WARNING or ERROR", key)
		default:
			if _, err := ParseLogLevel(level); err != nil {
				p.addf("%s: %w", key, err)
			}
		}
	}
	return p
}
