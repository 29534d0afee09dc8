package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/ansible-worker/ansible-worker/config"
)

// componentKey is the attribute that names the part of the program a log
// line comes from; log_levels sets a level per value of it.
const componentKey = "component"

// newLogger builds the slog logger of the configuration: text or JSON
// lines to standard error or log_file, the level of each line being that
// of its component (log_levels) or else log_level. Its lines carry
// component=cli until a part of the program sets its own component with
// log.With. The returned output reopens log_file on demand (SIGHUP) and
// closes it.
func newLogger(cfg *config.Config) (*slog.Logger, *logOutput, error) {
	out, err := openLogOutput(cfg.LogFile)
	if err != nil {
		return nil, nil, err
	}
	levels := componentLevels{def: cfg.SlogLevel(), by: cfg.ComponentLevels()}
	// The inner handler lets everything through: the levels are applied
	// by the componentHandler, which knows the component.
	opts := &slog.HandlerOptions{Level: levels.lowest()}
	var inner slog.Handler = slog.NewTextHandler(out, opts)
	if strings.EqualFold(cfg.LogFormat, "json") {
		inner = slog.NewJSONHandler(out, opts)
	}
	return slog.New(newComponentHandler(inner, levels)).With(componentKey, config.LogCLI), out, nil
}

// componentLevels are the levels of the log: by component, else def.
type componentLevels struct {
	def slog.Level
	by  map[string]slog.Level
}

// of returns the level of component ("" : none).
func (l componentLevels) of(component string) slog.Level {
	if lv, ok := l.by[component]; ok {
		return lv
	}
	return l.def
}

// lowest returns the lowest level of any component.
func (l componentLevels) lowest() slog.Level {
	lowest := l.def
	for _, lv := range l.by {
		lowest = min(lowest, lv)
	}
	return lowest
}

// componentHandler applies the level of a line's component. The component
// comes from log.With("component", name): slog asks Enabled before the
// attributes of a record are known, so it must be part of the handler.
//
// Parts of the program refine their component ("mqtt-status" under mqtt,
// "nats-server" under embedded): the level is that of the innermost
// component log_levels knows, and the line shows the innermost component
// only, once (a "component" of the record itself wins), not every one that
// was set on the way.
type componentHandler struct {
	inner  slog.Handler
	levels componentLevels
	// level is the level of known, the innermost known component.
	level slog.Level
	known string
	// shown is the innermost component: it is added to each record, not
	// passed to inner, so that a later one can replace it.
	shown string
	// grouped is set once a group is open: a "component" inside a group
	// is an attribute like any other.
	grouped bool
}

func newComponentHandler(inner slog.Handler, levels componentLevels) *componentHandler {
	return &componentHandler{inner: inner, levels: levels, level: levels.def}
}

// Enabled reports whether a line of level l of the handler's component is
// logged.
func (h *componentHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

// Handle writes r with the handler's component first among its attributes.
func (h *componentHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.shown == "" || hasComponent(r) {
		return h.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(slog.String(componentKey, h.shown))
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}

// hasComponent reports whether the record sets its own component.
func hasComponent(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == componentKey
		return !found
	})
	return found
}

// WithAttrs keeps a component out of attrs (see componentHandler) and
// passes the rest on.
func (h *componentHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	if !h.grouped {
		rest := make([]slog.Attr, 0, len(attrs))
		for _, a := range attrs {
			if a.Key != componentKey {
				rest = append(rest, a)
				continue
			}
			c.setComponent(a.Value.Resolve().String())
		}
		attrs = rest
	}
	if len(attrs) > 0 {
		c.inner = c.inner.WithAttrs(attrs)
	}
	return &c
}

// setComponent makes name the shown component and, when log_levels may
// name it, the one whose level applies.
func (h *componentHandler) setComponent(name string) {
	h.shown = name
	if slices.Contains(config.LogComponents(), name) {
		h.known, h.level = name, h.levels.of(name)
	}
}

// WithGroup opens a group; the component stays outside it.
func (h *componentHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	if c.shown != "" {
		c.inner = c.inner.WithAttrs([]slog.Attr{slog.String(componentKey, c.shown)})
		c.shown = ""
	}
	c.inner, c.grouped = c.inner.WithGroup(name), true
	return &c
}

// logOutput is where the log is written: standard error, or log_file,
// which Reopen opens again at the same path, so that the log goes on in a
// new file after logrotate renamed the old one (its "create" mode).
type logOutput struct {
	mu     sync.Mutex
	path   string
	f      *os.File // nil: standard error
	closed bool
}

// openLogOutput opens path for appending, creating it with mode 0640
// (before the umask); "" means standard error.
func openLogOutput(path string) (*logOutput, error) {
	o := &logOutput{path: path}
	if path == "" {
		return o, nil
	}
	f, err := openLogFile(path)
	if err != nil {
		return nil, err
	}
	o.f = f
	return o, nil
}

func openLogFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	return f, nil
}

// Write writes one log line (slog writes each line whole).
func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return os.Stderr.Write(p)
	}
	return o.f.Write(p)
}

// Reopen opens the log file's path again and writes there from now on.
// When that fails, the log goes on in the file it was in. Without a log
// file it does nothing.
func (o *logOutput) Reopen() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil || o.closed {
		return nil
	}
	f, err := openLogFile(o.path)
	if err != nil {
		return err
	}
	old := o.f
	o.f = f
	return old.Close()
}

// Close closes the log file; what is logged afterwards goes to standard
// error.
func (o *logOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil || o.closed {
		return nil
	}
	o.closed = true
	f := o.f
	o.f = nil
	return f.Close()
}

// reopenLogHook is the SIGHUP hook that reopens the log file; it logs
// when it cannot (to the file still open).
func reopenLogHook(out *logOutput, log *slog.Logger) func() {
	return func() {
		if out.path == "" {
			return
		}
		if err := out.Reopen(); err != nil {
			log.Error("cannot reopen the log file; logging on to the old one", "err", err)
			return
		}
		log.Info("log file reopened", "log_file", out.path)
	}
}
