package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/schemas"
)

func groupFlag() cli.Flag {
	return &cli.StringFlag{Name: "group", Aliases: []string{"g"}, Usage: "worker `GROUP`", DefaultText: "worker.group_name"}
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
			&cli.BoolFlag{Name: "wait-for-task", Usage: "with TASK_ID, wait for a task the group does not know yet instead of exiting 2"},
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
				if id == "" {
					return watchGroup(c.Context, cl, c.Bool("json"), c.App.Writer)
				}
				if !c.Bool("wait-for-task") {
					// Following a task that never comes would wait for ever.
					if _, err := cl.Status(c.Context, id); errors.Is(err, client.ErrNotFound) {
						return cli.Exit(err.Error()+" (--wait-for-task waits for it)", exitUsage)
					} else if err != nil {
						return exitFor(err)
					}
				}
				return follow(c, cl, id, !c.Bool("quiet"))
			})
		},
	}
}

func tasksCommand() *cli.Command {
	return &cli.Command{
		Name:  "tasks",
		Usage: "list the tasks of a group with their latest state",
		Flags: withCommon(groupFlag(),
			&cli.StringFlag{Name: "state", Usage: "only tasks in this `STATE`: " + stateNames() + " (or canceled)"},
			&cli.BoolFlag{Name: "json", Usage: "print the TaskStatus list as JSON"},
		),
		Action: func(c *cli.Context) error {
			state, err := parseState(c.String("state"))
			if err != nil {
				return cli.Exit(err.Error(), exitUsage)
			}
			return withClient(c, func(cl *client.Client) error {
				return listTasks(c.Context, cl, state, c.Bool("json"), c.App.Writer)
			})
		},
	}
}

// states are the task states, in life-cycle order.
var states = []schemas.State{schemas.StateQueued, schemas.StateRunning, schemas.StateSuccess,
	schemas.StateFailed, schemas.StateCancelled, schemas.StateTimeout}

func stateNames() string {
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// parseState reads a --state value; "" selects every state. The runner's
// spelling "canceled" is "cancelled".
func parseState(s string) (schemas.State, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", nil
	}
	if s == schemas.RunnerCanceled {
		return schemas.StateCancelled, nil
	}
	for _, st := range states {
		if s == string(st) {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown state %q; the states are %s", s, stateNames())
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

// watchGroup prints the current status of every task of the group, then
// every change, until interrupted (like `nats kv watch`).
func watchGroup(ctx context.Context, cl *client.Client, asJSON bool, out io.Writer) error {
	if !asJSON && isTerminal(out) {
		fmt.Fprintln(out, statusHeader())
	}
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

// isTerminal reports whether w is a terminal: a header row is for a person,
// and would be one more line for a script to skip.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

const rowFormat = "%-24s %-32s %-9s %8s %s"

func statusHeader() string {
	return fmt.Sprintf(rowFormat, "CREATED", "TASK", "STATE", "DURATION", "COUNTS, WORKER, ERROR")
}

func statusRow(st *schemas.TaskStatus) string {
	created := ""
	if st.CreatedAt != nil {
		created = st.CreatedAt.UTC().Format(schemas.TimeFormat)
	}
	rest := fmt.Sprintf("ok=%d changed=%d failed=%d skipped=%d unreachable=%d worker=%s %s",
		st.TasksOK, st.TasksChanged, st.TasksFailed, st.TasksSkipped, st.TasksUnreachable, st.Worker,
		strings.ReplaceAll(st.Err(), "\n", " "))
	return fmt.Sprintf(rowFormat, created, st.TaskID, st.State, fmt.Sprintf("%.1fs", st.DurationSeconds), rest)
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
	if isTerminal(out) {
		fmt.Fprintln(out, statusHeader())
	}
	for _, st := range list {
		fmt.Fprintln(out, statusRow(st))
	}
	return nil
}
