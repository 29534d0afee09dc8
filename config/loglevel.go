package config

import (
	"fmt"
	"log/slog"
	"strings"
)

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
