// Command ansible-worker runs Ansible playbooks from a NATS JetStream work
// queue, and submits, follows and inspects the tasks.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/worker"
)

// Exit codes of commands that wait for a task (see the contract).
const (
	exitSuccess     = 0
	exitFailed      = 1
	exitUsage       = 2
	exitTimeout     = 3
	exitCancelled   = 4
	exitUnreachable = 5
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == worker.SuperviseArg {
		os.Exit(worker.Supervise(os.Args[2:]))
	}
	app := &cli.App{
		Name:  "ansible-worker",
		Usage: "run Ansible playbooks from a NATS JetStream work queue",
		// JSON extra vars contain commas; list flags split themselves.
		DisableSliceFlagSeparator: true,
		Flags: append(commonFlags(),
			&cli.BoolFlag{Name: "validate", Usage: "check the configuration, print it with secrets masked, and exit"},
		),
		Action: func(c *cli.Context) error {
			if c.Bool("validate") {
				return validateAction(c)
			}
			if c.NArg() > 0 {
				return cli.Exit(fmt.Sprintf("unknown command %q (see --help)", c.Args().First()), exitUsage)
			}
			return runAction(c)
		},
		Commands: []*cli.Command{
			runCommand(),
			validateCommand(),
			submitCommand(),
			statusCommand(),
			watchCommand(),
			tasksCommand(),
			cancelCommand(),
		},
		ExitErrHandler: func(c *cli.Context, err error) {
			if err == nil {
				return
			}
			if ec, ok := err.(cli.ExitCoder); ok {
				if msg := err.Error(); msg != "" {
					fmt.Fprintln(os.Stderr, "ansible-worker:", msg)
				}
				os.Exit(ec.ExitCode())
			}
			fmt.Fprintln(os.Stderr, "ansible-worker:", err)
			os.Exit(exitUsage)
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return cli.Exit(err.Error(), exitUsage)
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker:", err)
		os.Exit(exitUsage)
	}
}

// commonFlags are accepted before and after the command name.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration `FILE` (default ./config.yaml when present)", EnvVars: []string{"ANSIBLE_WORKER_CONFIG"}},
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, Usage: "NATS server `URL`s, comma separated (overrides nats.servers)"},
	}
}

// withCommon adds the common flags to a command's own.
func withCommon(flags ...cli.Flag) []cli.Flag { return append(commonFlags(), flags...) }
