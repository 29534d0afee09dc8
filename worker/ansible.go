package worker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// eventFD is the descriptor number the callback plugin writes events to:
// the first of cmd.ExtraFiles.
const eventFD = 3

// Process describes one ansible-playbook run.
type Process struct {
	// Executable is ansible-playbook (or a path to it).
	Executable string
	// Args follow the executable.
	Args []string
	// Dir is the working directory.
	Dir string
	// Env is the complete environment of the process.
	Env []string
	// PluginDir holds the callback plugin (see InstallCallback).
	PluginDir string
	// Ident becomes runner_ident of every event.
	Ident string
	// Color keeps Ansible's ANSI colours in the events' stdout, as in
	// ansible-runner's events (Ansible runs in a terminal there). Without
	// it the text is plain.
	Color bool
	// KillGrace is how long the process group has between SIGINT and SIGKILL
	// when the run is stopped.
	KillGrace time.Duration
	// Supervisors, when set, supply the process that runs the playbook and
	// makes sure no process of it survives the worker (see Supervise).
	Supervisors *Supervisors
	// Warm, when set, forks the playbook from a warm process when one is
	// ready for it (see Warm); otherwise it starts cold.
	Warm *Warm
	// OnStart is called with the pid once the process runs.
	OnStart func(pid int)
	// OnEvent receives every event, in order, counters 1..N. It runs on the
	// reading goroutine: it must not block for long.
	OnEvent func(ev *schemas.Event)
}

// Exit describes how a run ended.
type Exit struct {
	// RC is ansible-playbook's exit code, or -1 when it died by a signal.
	RC int
	// Stopped is true when ctx ended the run (timeout, cancel, shutdown).
	Stopped bool
	// Complete is true when the callback plugin reported the end of the
	// playbook (playbook_on_stats was emitted).
	Complete bool
	// Events is the number of events emitted.
	Events int
	// Warm is true when the playbook was forked from a warm process.
	Warm bool
}

// Run executes the process in its own process group and streams its events
// until it ends. When ctx ends first the whole group gets SIGINT, then
// SIGKILL after KillGrace. However the run ends, no process of the group is
// left behind.
func (p *Process) Run(ctx context.Context) (Exit, error) {
	evR, evW, err := os.Pipe()
	if err != nil {
		return Exit{}, fmt.Errorf("event pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		evR.Close()
		evW.Close()
		return Exit{}, fmt.Errorf("output pipe: %w", err)
	}
	env := p.environ()
	pr, err := p.start(env, outW, evW)
	// Only the child keeps the write ends, so EOF means the group is gone.
	evW.Close()
	outW.Close()
	if err != nil {
		evR.Close()
		outR.Close()
		return Exit{RC: 127}, err
	}
	if p.OnStart != nil && pr.group > 0 {
		p.OnStart(pr.group)
	}
	w := &watch{p: p, group: pr.group, sup: pr.sup, pipes: []*os.File{evR, outR},
		seq: &sequencer{ident: p.Ident, pid: pr.group}, ended: make(chan procEnd, 1)}
	go func() {
		rc, err := pr.wait()
		w.ended <- procEnd{rc, err}
	}()
	w.loop(ctx, w.read(evR, outR))
	evR.Close()
	outR.Close()
	w.exit.Events = w.seq.counter
	w.exit.RC = w.end.rc
	w.exit.Warm = pr.warm
	if w.end.err != nil {
		return w.exit, fmt.Errorf("wait for %s: %w", p.Executable, w.end.err)
	}
	return w.exit, nil
}

// environ is the playbook's environment: Env, then the callback plugin's
// settings.
func (p *Process) environ() []string {
	return append(slices.Clone(p.Env), callbackEnv(p.PluginDir, eventFD, p.Color)...)
}

// started is a started playbook.
type started struct {
	// warm is true for a playbook forked from a warm process.
	warm bool
	// group is the playbook's pid and process group; 0 when a supervisor
	// could not start it.
	group int
	// sup is the pid of its supervisor, 0 without one.
	sup int
	// wait returns its exit code once it ended (see Exit.RC).
	wait func() (int, error)
}

// procEnd is how a playbook ended: its exit code, or why it is unknown.
type procEnd struct {
	rc  int
	err error
}

// watch follows a started playbook: its output and events, its end, and
// the signals that stop it.
type watch struct {
	p     *Process
	group int
	sup   int
	pipes []*os.File
	seq   *sequencer
	ended chan procEnd
	end   procEnd
	exit  Exit
	// exited: the process is reaped; stopping: ctx ended it; terminated:
	// its supervisor got SIGTERM.
	exited, stopping, terminated bool
	killTimer                    <-chan time.Time
}

// read starts a reader per pipe; the channel closes when both hit EOF.
func (w *watch) read(evR, outR *os.File) <-chan sourced {
	lines := make(chan sourced, 256)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); readLines(evR, true, lines) }()
	go func() { defer readers.Done(); readLines(outR, false, lines) }()
	go func() { readers.Wait(); close(lines) }()
	return lines
}

// loop runs until the process is reaped and its pipes are drained.
func (w *watch) loop(ctx context.Context, lines <-chan sourced) {
	done := ctx.Done()
	for lines != nil || !w.exited {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			w.line(l)
		case w.end = <-w.ended:
			w.exited = true
			w.ended = nil
			// Kill what the playbook left behind (async tasks, stray forks)
			// so the pipes close and nothing outlives the task.
			w.signal(syscall.SIGKILL)
			if lines != nil {
				// A process that left the group could hold a pipe open.
				w.killTimer = time.After(5 * time.Second)
			}
		case <-done:
			done = nil
			w.stopping = true
			w.exit.Stopped = true
			w.signal(syscall.SIGINT)
			w.killTimer = time.After(w.p.KillGrace)
		case <-w.killTimer:
			w.escalate()
		}
	}
}

// signal sends sig to the playbook's process group, if it started.
func (w *watch) signal(sig syscall.Signal) {
	if w.group > 0 {
		_ = kill(-w.group, sig)
	}
}

func (w *watch) line(l sourced) {
	ev, eof := w.seq.event(l)
	if eof {
		w.exit.Complete = true
	}
	if ev != nil && w.p.OnEvent != nil {
		w.p.OnEvent(ev)
	}
}

// escalate acts when the kill timer fires: SIGTERM to the supervisor (it
// also reaches descendants that left the group), then SIGKILL to the group;
// once the group is dead, a pipe still held open is closed.
func (w *watch) escalate() {
	w.killTimer = nil
	if w.exited {
		for _, f := range w.pipes {
			f.Close()
		}
		return
	}
	if w.sup > 0 && !w.terminated {
		w.terminated = true
		_ = kill(w.sup, syscall.SIGTERM)
	} else {
		w.signal(syscall.SIGKILL)
	}
	if w.stopping {
		w.killTimer = time.After(5 * time.Second)
	}
}

// start starts the playbook, under a supervisor when there are some, in a
// process group of its own so the whole tree can be signalled.
func (p *Process) start(env []string, out, events *os.File) (*started, error) {
	if p.Warm != nil {
		if st, ok := p.Warm.start(p, env, out, events); ok {
			return st, nil
		}
	}
	if p.Supervisors != nil {
		return p.supervised(env, out, events)
	}
	if err := CanRunPlaybooks(); err != nil {
		return nil, err
	}
	cmd := exec.Command(p.Executable, p.Args...)
	cmd.Dir = p.Dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{events}
	// The kernel kills it if the worker dies (on Linux: see procAttr).
	cmd.SysProcAttr = procAttr(true, syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.Executable, err)
	}
	return &started{group: cmd.Process.Pid, wait: func() (int, error) {
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return -1, err
		}
		return cmd.ProcessState.ExitCode(), nil
	}}, nil
}

// supervised hands the playbook to a ready supervisor, which serves the
// next job once this one ended.
func (p *Process) supervised(env []string, out, events *os.File) (*started, error) {
	sv, err := p.Supervisors.take()
	if err != nil {
		return nil, err
	}
	pid, err := sv.run(job{Argv: append([]string{p.Executable}, p.Args...), Env: env, Dir: p.Dir}, out, []*os.File{events})
	if err != nil {
		_ = kill(-sv.cmd.Process.Pid, syscall.SIGKILL)
		p.Supervisors.release(sv, false)
		return nil, err
	}
	return &started{group: pid, sup: sv.cmd.Process.Pid, wait: func() (int, error) {
		rc, ok := sv.wait()
		p.Supervisors.release(sv, ok)
		return rc, nil
	}}, nil
}

// sourced is one line from the plugin's side channel or from the process's
// own stdout/stderr.
type sourced struct {
	data   []byte
	plugin bool
}

func readLines(r io.Reader, plugin bool, out chan<- sourced) {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			out <- sourced{data: b, plugin: plugin}
		}
		if err != nil {
			return
		}
	}
}

// pluginEvent is a line of the callback plugin's side channel.
type pluginEvent struct {
	Event      string          `json:"event"`
	UUID       string          `json:"uuid"`
	ParentUUID string          `json:"parent_uuid"`
	PID        int             `json:"pid"`
	Created    string          `json:"created"`
	Stdout     string          `json:"stdout"`
	Verbosity  *int            `json:"verbosity"`
	EventData  json.RawMessage `json:"event_data"`
}

// sequencer numbers events and tracks output lines like ansible-runner does.
type sequencer struct {
	ident   string
	pid     int
	counter int
	line    int
}

var emptyObject = json.RawMessage(`{}`)

// createdLayout is the form of created: naive UTC, as ansible-runner 2.3.1
// writes it (datetime.utcnow().isoformat()), always with microseconds (the
// plugin's timestamps have the same form).
const createdLayout = "2006-01-02T15:04:05.000000"

// event turns one line into an event. eof reports the plugin's end marker.
func (s *sequencer) event(l sourced) (ev *schemas.Event, eof bool) {
	var pe pluginEvent
	text := !l.plugin
	if l.plugin {
		if err := json.Unmarshal(l.data, &pe); err != nil {
			// Never lose output: show a damaged line as text.
			text = true
		} else if pe.Event == "__eof__" {
			return nil, true
		}
	}
	if text {
		// Text outside the plugin (what Ansible prints before it loads the
		// plugin, errors of crashing processes): one verbose event per line
		// with neither pid nor event_data, as ansible-runner makes of text
		// outside any event.
		pe = pluginEvent{Event: "verbose", Stdout: string(l.data)}
	} else {
		if pe.PID == 0 {
			pe.PID = s.pid
		}
		if len(pe.EventData) == 0 || string(pe.EventData) == "null" {
			pe.EventData = emptyObject
		}
	}
	if pe.UUID == "" {
		pe.UUID = newUUID()
	}
	if pe.Created == "" {
		pe.Created = time.Now().UTC().Format(createdLayout)
	}
	n := strings.Count(pe.Stdout, "\n")
	stdout := strings.TrimRight(pe.Stdout, "\r\n")
	if text && n == 0 {
		n = 1 // last line without a newline
	}
	s.counter++
	ev = &schemas.Event{
		UUID:        pe.UUID,
		Counter:     s.counter,
		Stdout:      stdout,
		StartLine:   s.line,
		EndLine:     s.line + n,
		RunnerIdent: s.ident,
		Event:       pe.Event,
		PID:         pe.PID,
		Created:     pe.Created,
		ParentUUID:  pe.ParentUUID,
		Verbosity:   pe.Verbosity,
		EventData:   pe.EventData,
	}
	s.line += n
	return ev, false
}

// ansiEscape matches an ANSI escape sequence (CSI: ESC [, parameters,
// intermediates, final byte), the form of Ansible's colours.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-?]*[ -/]*[@-~]`)

// StripANSI returns s without its ANSI escape sequences: the plain text of
// an event's stdout (see Process.Color), for whatever reads or shows it as
// text.
func StripANSI(s string) string {
	if !strings.Contains(s, "\x1b[") {
		return s
	}
	return ansiEscape.ReplaceAllString(s, "")
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

// ChildEnv is the worker's environment minus what ansible-playbook must not
// see: the worker's own NATS settings and secrets, and the variables named
// in hide (those the configuration file referred to).
func ChildEnv(environ []string, hide ...string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "RUNNER_NATS_") || k == "RUNNER_MAX_OUTSTANDING_PINGS" ||
			strings.HasPrefix(k, "ANSIBLE_WORKER_") || slices.Contains(hide, k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// itoa is strconv.Itoa, kept short for argv building.
func itoa(i int) string { return strconv.Itoa(i) }
