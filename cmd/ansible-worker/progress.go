package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/kballard/go-shellquote"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/ansible-worker/ansible-worker/worker"
)

// follow streams a task's output and progress and exits with its result.
// Ctrl-C stops following, not the task: it says how to follow or cancel it
// and exits with exitInterrupted.
func follow(c *cli.Context, cl *client.Client, id string, showOutput bool) error {
	final, err := followFinal(c, cl, id, showOutput)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.ErrWriter, summary(final))
	return cli.Exit("", exitForState(final.State))
}

// followFinal is follow up to the final status, which it returns
// unprinted.
func followFinal(c *cli.Context, cl *client.Client, id string, showOutput bool) (*schemas.TaskStatus, error) {
	out, errOut := c.App.Writer, c.App.ErrWriter
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	p := newProgressLine(errOut, out, showOutput)
	stopTicker := p.tick(250 * time.Millisecond)
	// The counts of the line come from the events, so it needs them even
	// when the output is not shown.
	final, err := cl.Follow(ctx, id, showOutput || p.tty, func(u jsbridge.Update) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if u.Event != nil && showOutput && u.Event.Stdout != "" {
			p.clear()
			fmt.Fprintln(out, p.text(u.Event.Stdout))
		}
		p.update(u)
		p.draw()
	})
	stopTicker()
	p.clear()
	if err != nil {
		if ctx.Err() != nil && c.Context.Err() == nil {
			stop() // a second Ctrl-C ends the command at once
			fmt.Fprintf(errOut, "interrupted: task %s goes on.\n  follow it: %s\n  cancel it: %s\n",
				id, againCommand(c, "watch", id), againCommand(c, "cancel", id))
			return nil, cli.Exit("", exitInterrupted)
		}
		return nil, cli.Exit(err.Error(), exitUnreachable)
	}
	return final, nil
}

// againCommand is the command line that runs command on task id with the
// connection flags this one was given.
func againCommand(c *cli.Context, command, id string) string {
	args := []string{"ansible-worker", command}
	for _, f := range []struct{ flag, value string }{
		{"-c", commonFlag(c, "config")}, {"-s", commonFlag(c, "server")}, {"--group", c.String("group")},
	} {
		if f.value != "" {
			args = append(args, f.flag, f.value)
		}
	}
	return shellquote.Join(append(args, id)...)
}

func summary(st *schemas.TaskStatus) string {
	s := fmt.Sprintf("task %s %s in %.1fs: ok=%d changed=%d failed=%d skipped=%d unreachable=%d tasks=%d",
		st.TaskID, st.State, st.DurationSeconds, st.TasksOK, st.TasksChanged, st.TasksFailed, st.TasksSkipped,
		st.TasksUnreachable, st.TasksTotal)
	if st.ReturnCode != nil {
		s += fmt.Sprintf(" rc=%d", *st.ReturnCode)
	}
	if e := st.Err(); e != "" {
		s += "\nerror: " + e
	}
	if len(st.Output) > 0 {
		b, _ := json.Marshal(st.Output)
		s += "\noutput: " + string(b)
	}
	return s
}

// progressLine is the one-line live summary under the playbook output. It
// is drawn in place, cut to the terminal's width, only when it shares a
// terminal with the output: a line on a terminal that the output does not
// go to (`| tee log`) would glue itself into the output there. Its counts
// follow the live events; the state comes from the TaskStatus.
type progressLine struct {
	mu      sync.Mutex // held by the caller of update, draw, clear
	w       io.Writer
	fd      int // of w, for the terminal's width
	tty     bool
	shown   bool
	state   schemas.State
	attempt int
	task    string
	counts  *worker.Progress
	start   time.Time
	color   bool // the output keeps Ansible's colours
}

func newProgressLine(w, out io.Writer, showOutput bool) *progressLine {
	p := &progressLine{w: w, state: schemas.StateQueued, start: time.Now(), counts: worker.NewProgress(),
		color: colorTerminal(out)}
	f, ok := w.(*os.File)
	// A terminal, not just any character device (/dev/null is one).
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return p
	}
	p.fd = int(f.Fd())
	p.tty = !showOutput || sameTerminal(f, out)
	return p
}

// colorTerminal reports whether out is a terminal that may show colours:
// not a file or pipe, and NO_COLOR (no-color.org) not set.
func colorTerminal(out io.Writer) bool {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	_, noColor := os.LookupEnv("NO_COLOR")
	return !noColor
}

// text is event output as it is printed: with Ansible's colours on a
// terminal that shows them, plain otherwise.
func (p *progressLine) text(s string) string {
	if p.color {
		return s
	}
	return worker.StripANSI(s)
}

// sameTerminal reports whether out is the terminal f is.
func sameTerminal(f *os.File, out io.Writer) bool {
	o, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(o.Fd())) {
		return false
	}
	a, errA := f.Stat()
	b, errB := o.Stat()
	if errA != nil || errB != nil {
		return true // two terminals that cannot be told apart (a console)
	}
	return os.SameFile(a, b)
}

// tick redraws the line every d so its clock runs while Ansible is quiet;
// the returned function stops it.
func (p *progressLine) tick(d time.Duration) func() {
	if !p.tty {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// update takes one event or status into the line.
func (p *progressLine) update(u jsbridge.Update) {
	switch {
	case u.Event != nil:
		p.counts.Observe(u.Event)
		if p.state == schemas.StateQueued {
			p.state = schemas.StateRunning // events come from a run
		}
		if u.Event.Event == "playbook_on_task_start" {
			var d struct {
				Task string `json:"task"`
			}
			_ = json.Unmarshal(u.Event.EventData, &d)
			p.task = d.Task
		}
	case u.Status != nil:
		if u.Status.Attempt > p.attempt && p.attempt > 0 {
			// A redelivered task starts over.
			p.counts, p.task = worker.NewProgress(), ""
		}
		p.attempt = max(p.attempt, u.Status.Attempt)
		if !(p.state == schemas.StateRunning && u.Status.State == schemas.StateQueued) {
			p.state = u.Status.State
		}
	}
}

func (p *progressLine) draw() {
	if !p.tty {
		return
	}
	c, _, _ := p.counts.Snapshot()
	line := fmt.Sprintf("[%s] %s ok=%d changed=%d failed=%d", p.state, time.Since(p.start).Round(100*time.Millisecond),
		c.OK, c.Changed, c.Failed)
	if p.task != "" {
		line += " task: " + p.task
	}
	fmt.Fprintf(p.w, "\r\033[K%s", fitLine(line, p.width()))
	p.shown = true
}

// width is the terminal's width now: read at each redraw, so the line
// follows a resized window.
func (p *progressLine) width() int {
	w, _, err := term.GetSize(p.fd)
	if err != nil || w <= 0 {
		return 80
	}
	return w
}

// fitLine makes s one line shorter than width: a line that fills the last
// column wraps on some terminals, and a wrapped line cannot be redrawn in
// place.
func fitLine(s string, width int) string {
	r := []rune(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' ' // a control character would move the cursor
		}
		return r
	}, s))
	if n := width - 1; len(r) > n {
		r = r[:max(n, 0)]
	}
	return string(r)
}

func (p *progressLine) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
