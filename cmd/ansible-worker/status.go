package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

func groupFlag() cli.Flag {
	return &cli.StringFlag{Name: "group", Aliases: []string{"g"}, Usage: "worker group (default worker.group_name)"}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "print the latest TaskStatus of a task as JSON",
		ArgsUsage: "TASK_ID",
		Flags:     withCommon(groupFlag()),
		Action: func(c *cli.Context) error {
			id, err := oneID(c)
			if err != nil {
				return err
			}
			return withClient(c, func(cl *client.Client) error {
				st, err := cl.Status(c.Context, id)
				if err != nil {
					return exitFor(err)
				}
				b, _ := json.MarshalIndent(st, "", "  ")
				fmt.Fprintln(c.App.Writer, string(b))
				return nil
			})
		},
	}
}

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "follow one task live (output, progress, exit code), or the statuses of the group and every change",
		ArgsUsage: "[TASK_ID]",
		Flags: withCommon(groupFlag(),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not print the playbook output"},
			&cli.BoolFlag{Name: "json", Usage: "print each TaskStatus as JSON"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return cli.Exit("watch takes at most one task id", exitUsage)
			}
			id := c.Args().First()
			if id != "" {
				if err := schemas.CheckID("task id", id); err != nil {
					return cli.Exit(err.Error(), exitUsage)
				}
			}
			return withClient(c, func(cl *client.Client) error {
				if id != "" {
					return follow(c.Context, cl, id, !c.Bool("quiet"), c.App.Writer, c.App.ErrWriter)
				}
				return watchGroup(c.Context, cl, c.Bool("json"), c.App.Writer)
			})
		},
	}
}

func tasksCommand() *cli.Command {
	return &cli.Command{
		Name:  "tasks",
		Usage: "list the tasks of a group with their latest state",
		Flags: withCommon(groupFlag(),
			&cli.StringFlag{Name: "state", Usage: "only tasks in this state"},
			&cli.BoolFlag{Name: "json", Usage: "print the TaskStatus list as JSON"},
		),
		Action: func(c *cli.Context) error {
			return withClient(c, func(cl *client.Client) error {
				return listTasks(c.Context, cl, schemas.State(c.String("state")), c.Bool("json"), c.App.Writer)
			})
		},
	}
}

func oneID(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", cli.Exit("expected one task id", exitUsage)
	}
	id := c.Args().First()
	if err := schemas.CheckID("task id", id); err != nil {
		return "", cli.Exit(err.Error(), exitUsage)
	}
	return id, nil
}

// follow streams a task's output and progress and exits with its result.
func follow(ctx context.Context, cl *client.Client, id string, showOutput bool, out, errOut io.Writer) error {
	p := newProgressLine(errOut)
	stopTicker := p.tick(250 * time.Millisecond)
	final, err := cl.Follow(ctx, id, showOutput, func(u jsbridge.Update) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case u.Event != nil:
			if showOutput && u.Event.Stdout != "" {
				p.clear()
				fmt.Fprintln(out, u.Event.Stdout)
			}
			p.event(u.Event)
		case u.Status != nil:
			p.status(u.Status)
		}
		p.draw()
	})
	stopTicker()
	p.clear()
	if err != nil {
		if ctx.Err() != nil {
			return cli.Exit("interrupted", exitFailed)
		}
		return cli.Exit(err.Error(), exitUnreachable)
	}
	fmt.Fprintln(errOut, summary(final))
	return cli.Exit("", exitForState(final.State))
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

// progressLine is the one-line live summary under the playbook output. On a
// terminal it is redrawn in place; otherwise nothing is drawn (the output
// and the final summary say it all).
type progressLine struct {
	mu     sync.Mutex // held by the caller of event, status, draw, clear
	w      io.Writer
	tty    bool
	shown  bool
	state  schemas.State
	task   string
	events int
	start  time.Time
	st     *schemas.TaskStatus
}

func newProgressLine(w io.Writer) *progressLine {
	tty := false
	if f, ok := w.(*os.File); ok {
		// A terminal, not just any character device (/dev/null is one).
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progressLine{w: w, tty: tty, state: schemas.StateQueued, start: time.Now()}
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

func (p *progressLine) event(ev *schemas.Event) {
	p.events++
	if ev.Event == "playbook_on_task_start" {
		var d struct {
			Task string `json:"task"`
		}
		_ = json.Unmarshal(ev.EventData, &d)
		p.task = d.Task
	}
}

func (p *progressLine) status(st *schemas.TaskStatus) {
	p.st = st
	p.state = st.State
}

func (p *progressLine) draw() {
	if !p.tty {
		return
	}
	line := fmt.Sprintf("[%s] %s", p.state, time.Since(p.start).Round(100*time.Millisecond))
	if p.st != nil {
		line += fmt.Sprintf(" ok=%d changed=%d failed=%d", p.st.TasksOK, p.st.TasksChanged, p.st.TasksFailed)
	}
	if p.task != "" {
		line += " task: " + p.task
	}
	if len(line) > 120 {
		line = line[:120]
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.shown = true
}

func (p *progressLine) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// watchGroup prints the current status of every task of the group, then
// every change, until interrupted (like `nats kv watch`).
func watchGroup(ctx context.Context, cl *client.Client, asJSON bool, out io.Writer) error {
	err := cl.Watch(ctx, func(u client.StatusUpdate) error {
		switch {
		case asJSON:
			fmt.Fprintln(out, string(u.Raw))
		case u.Status != nil:
			fmt.Fprintln(out, statusRow(u.Status))
		}
		return nil
	})
	if err == nil || ctx.Err() != nil {
		return nil
	}
	return cli.Exit(err.Error(), exitUnreachable)
}

func statusRow(st *schemas.TaskStatus) string {
	created := ""
	if st.CreatedAt != nil {
		created = st.CreatedAt.UTC().Format(schemas.TimeFormat)
	}
	return fmt.Sprintf("%-24s %-32s %-9s %7.1fs ok=%d changed=%d failed=%d skipped=%d unreachable=%d worker=%s %s",
		created, st.TaskID, st.State, st.DurationSeconds, st.TasksOK, st.TasksChanged, st.TasksFailed,
		st.TasksSkipped, st.TasksUnreachable, st.Worker, strings.ReplaceAll(st.Err(), "\n", " "))
}

func listTasks(ctx context.Context, cl *client.Client, state schemas.State, asJSON bool, out io.Writer) error {
	list, err := cl.List(ctx, client.Filter{State: state})
	if err != nil {
		return cli.Exit(err.Error(), exitUnreachable)
	}
	if asJSON {
		b, _ := json.MarshalIndent(list, "", "  ")
		fmt.Fprintln(out, string(b))
		return nil
	}
	for _, st := range list {
		fmt.Fprintln(out, statusRow(st))
	}
	return nil
}
