// Command ansible-worker runs Ansible playbooks from a NATS JetStream work
// queue, and submits, follows and inspects the tasks.
package main

//go:generate go run . __doc-cli -o ../../docs/cli.md

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"

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
	// exitInterrupted follows Ctrl-C, as a shell reports a process that
	// SIGINT ended (128+2).
	exitInterrupted = 130
)

// exitCodes documents every exit code; docs/cli.md is rendered from it.
var exitCodes = []struct {
	Code    int
	Short   string
	Meaning string
}{
	{exitSuccess, "success", "success: the command did what was asked; a command that waits for a task: the task succeeded"},
	{exitFailed, "failed", "the task failed; `cancel`: nothing was cancelled; `run`: the worker stopped on an error; `provision`: a setting could not be changed"},
	{exitUsage, "bad usage or configuration", "bad usage, an invalid request, a bad configuration, or bad connection settings (TLS, credentials or nkey files that cannot be read, or that the server refuses); `run`: the streams, buckets or consumer on the server contradict the configuration (`provision` changes them)"},
	{exitTimeout, "timeout", "the task timed out"},
	{exitCancelled, "cancelled", "the task was cancelled"},
	{exitUnreachable, "NATS unreachable", "NATS unreachable: no server answered (or, for `cancel`, the task runs on a worker that does not answer)"},
	{exitInterrupted, "interrupted", "Ctrl-C stopped `submit --wait` or `watch ID`; the task goes on (the command prints how to follow or cancel it)"},
}

// envNotifySocket is the systemd notification socket `run` reports READY=1 on.
const envNotifySocket = "NOTIFY_SOCKET"

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// empty means the module version recorded in the binary.
var version = ""

func main() {
	if len(os.Args) > 1 && os.Args[1] == worker.SuperviseArg {
		os.Exit(worker.Supervise(os.Args[2:]))
	}
	stopProfile := startProfile(os.Getenv(envCPUProfile))
	app := newApp()
	err := app.Run(flagsFirst(app, os.Args))
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker:", err)
		os.Exit(exitUsage)
	}
}

// envCPUProfile names a file to write a CPU profile of the command to
// (go tool pprof reads it): how the pipeline figures in BENCHMARKS.md
// were found.
const envCPUProfile = "ANSIBLE_WORKER_CPUPROFILE"

// startProfile starts a CPU profile into path, when set; the function it
// returns ends it.
func startProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker: CPU profile:", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// newApp is the whole command line: main runs it, docs/cli.md and the
// completion scripts are rendered from it.
func newApp() *cli.App {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version and exit", DisableDefaultText: true}
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "ansible-worker %s\n  go version = %s %s/%s\n", c.App.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	app := &cli.App{
		Name:        "ansible-worker",
		Usage:       "run Ansible playbooks from a NATS JetStream work queue",
		Version:     appVersion(),
		Description: helpDescription(),
		// JSON extra vars contain commas; list flags split themselves.
		DisableSliceFlagSeparator: true,
		EnableBashCompletion:      true,
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
			provisionCommand(),
			submitCommand(),
			statusCommand(),
			watchCommand(),
			tasksCommand(),
			cancelCommand(),
			workersCommand(),
			gatewayCommand(),
			transmitCommand(),
			jobWorkerCommand(),
			processCommand(),
			completionCommand(),
			docCLICommand(),
		},
		ExitErrHandler: exitErrHandler,
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return cli.Exit(err.Error(), exitUsage)
		},
	}
	oneDefaultPerFlag(app)
	completeFilesAfterCommands(app)
	return app
}

// helpDescription is the part of --help on the environment and the exit
// codes; docs/cli.md has the whole of both.
func helpDescription() string {
	var codes []string
	for _, e := range exitCodes {
		codes = append(codes, fmt.Sprintf("%d %s", e.Code, e.Short))
	}
	return "Environment: ANSIBLE_WORKER_CONFIG (the default of --config), " + envNotifySocket + " (run: sd_notify READY=1),\n" +
		"RUNNER_NATS_* (over the configuration file; see docs/configuration.md).\n" +
		"Exit codes: " + strings.Join(codes, ", ") + ".\n" +
		"docs/cli.md lists every command, option, environment variable and exit code."
}

// exitErrHandler prints a command's error and exits with its code.
func exitErrHandler(_ *cli.Context, err error) {
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
}

// oneDefaultPerFlag keeps urfave/cli from appending "(default: false)" to
// every switch: a switch's default is always off, and the help reads
// better without it.
func oneDefaultPerFlag(app *cli.App) {
	fix := func(flags []cli.Flag) {
		for _, f := range flags {
			if b, ok := f.(*cli.BoolFlag); ok {
				b.DisableDefaultText = true
			}
		}
	}
	fix(app.Flags)
	for _, c := range app.Commands {
		fix(c.Flags)
	}
}

// appVersion is the -ldflags version, else the main module's version or
// VCS revision recorded by the Go toolchain.
func appVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// commonFlags are accepted before and after the command name.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration `FILE`", DefaultText: "./config.yaml when present", EnvVars: []string{"ANSIBLE_WORKER_CONFIG"}},
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, Usage: "NATS server `URL`s, comma separated (overrides nats.servers and RUNNER_NATS_SERVERS)"},
	}
}

// withCommon adds the common flags to a command's own.
func withCommon(flags ...cli.Flag) []cli.Flag { return append(commonFlags(), flags...) }
