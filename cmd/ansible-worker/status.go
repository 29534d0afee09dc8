package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

var timeNow = time.Now

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
			return withClient(c, func(cl *client) error {
				st, err := cl.getStatus(c.Context, id)
				if err != nil {
					if errors.Is(err, jetstream.ErrKeyNotFound) {
						return cli.Exit(fmt.Sprintf("no task %s in group %s", id, cl.names.Group), exitUsage)
					}
					return cli.Exit(err.Error(), exitUnreachable)
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
			return withClient(c, func(cl *client) error {
				if id != "" {
					return cl.follow(c.Context, id, !c.Bool("quiet"), c.App.Writer, c.App.ErrWriter)
				}
				return cl.watchGroup(c.Context, c.Bool("json"), c.App.Writer)
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
			return withClient(c, func(cl *client) error {
				return cl.listTasks(c.Context, schemas.State(c.String("state")), c.Bool("json"), c.App.Writer)
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

func (cl *client) statusStore(ctx context.Context) (*jsbridge.StatusStore, error) {
	return jsbridge.OpenStatusStore(ctx, cl.js, cl.log)
}

func (cl *client) getStatus(ctx context.Context, id string) (*schemas.TaskStatus, error) {
	store, err := cl.statusStore(ctx)
	if err != nil {
		return nil, err
	}
	return store.Get(ctx, cl.names.Group, id)
}

// follow streams a task's output and progress and exits with its result.
func (cl *client) follow(ctx context.Context, id string, showOutput bool, out, errOut io.Writer) error {
	p := newProgressLine(errOut)
	stopTicker := p.tick(250 * time.Millisecond)
	final, err := jsbridge.Follow(ctx, cl.js, cl.names, id, showOutput, func(u jsbridge.Update) {
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
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		tty = err == nil
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
func (cl *client) watchGroup(ctx context.Context, asJSON bool, out io.Writer) error {
	store, err := cl.statusStore(ctx)
	if err != nil {
		return cli.Exit(err.Error(), exitUnreachable)
	}
	w, err := store.KV().Watch(ctx, cl.names.Group+".*")
	if err != nil {
		return cli.Exit(err.Error(), exitUnreachable)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return cli.Exit("watch ended", exitUnreachable)
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			if asJSON {
				fmt.Fprintln(out, string(e.Value()))
				continue
			}
			st, err := schemas.ParseTaskStatus(e.Value())
			if err != nil {
				continue
			}
			fmt.Fprintln(out, statusRow(&st))
		}
	}
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

func (cl *client) listTasks(ctx context.Context, state schemas.State, asJSON bool, out io.Writer) error {
	store, err := cl.statusStore(ctx)
	if err != nil {
		return cli.Exit(err.Error(), exitUnreachable)
	}
	lister, err := store.KV().ListKeysFiltered(ctx, cl.names.Group+".*")
	if err != nil {
		return cli.Exit(err.Error(), exitUnreachable)
	}
	var list []*schemas.TaskStatus
	for k := range lister.Keys() {
		id := strings.TrimPrefix(k, cl.names.Group+".")
		st, err := store.Get(ctx, cl.names.Group, id)
		if err != nil || (state != "" && st.State != state) {
			continue
		}
		list = append(list, st)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].CreatedAt, list[j].CreatedAt
		if a == nil || b == nil {
			return list[i].TaskID < list[j].TaskID
		}
		return a.Before(b.Time)
	})
	if asJSON {
		if list == nil {
			list = []*schemas.TaskStatus{}
		}
		b, _ := json.MarshalIndent(list, "", "  ")
		fmt.Fprintln(out, string(b))
		return nil
	}
	for _, st := range list {
		fmt.Fprintln(out, statusRow(st))
	}
	return nil
}
