package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/runnerstream"
	"github.com/ansible-worker/ansible-worker/worker"
)

func jobWorkerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run the job of a transmit stream on stdin and write the result stream on stdout (ansible-runner's worker stage)",
		Description: "The second stage of `transmit | worker | process`, wire-compatible with ansible-runner 2.3.\n" +
			"The job is data: env/envvars, env/cmdline and extra vars are held to the rules of any task\n" +
			"(docs/security.md) unless --trusted is given.",
		Flags: withCommon(
			&cli.StringFlag{Name: "private-data-dir", Usage: "extract the job into `DIR` and keep it (default: a temporary directory, removed afterwards)"},
			&cli.BoolFlag{Name: "delete", Usage: "remove --private-data-dir before and after the run"},
			&cli.Float64Flag{Name: "keepalive-seconds", Usage: "send a keepalive line after `N` seconds without output (0: never)", EnvVars: []string{"ANSIBLE_RUNNER_KEEPALIVE_SECONDS"}},
			&cli.BoolFlag{Name: "trusted", Usage: "take env/envvars, env/cmdline and extra vars as ansible-runner does: only for streams the operator writes"},
		),
		Subcommands: []*cli.Command{cleanupCommand()},
		Action:      jobWorkerAction,
	}
}

func jobWorkerAction(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return cli.Exit(fmt.Sprintf("cannot find the ansible-worker binary: %v", err), exitFailed)
	}
	jr, err := worker.NewJobRunner(cfg.Worker.AnsiblePlaybook, cfg.Worker.DataDir, self)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	defer jr.Close()
	jr.KillGrace = cfg.Worker.KillGraceDuration()
	jr.AllowInventoryScripts = cfg.Worker.AllowInventoryScripts
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o := runnerstream.WorkOptions{
		PrivateDataDir: c.String("private-data-dir"), Delete: c.Bool("delete"),
		Keepalive: time.Duration(c.Float64("keepalive-seconds") * float64(time.Second)),
		Job: runnerstream.JobOptions{Trusted: c.Bool("trusted"), MaxForks: cfg.Worker.MaxForks,
			MaxTimeout: seconds(cfg.Worker.MaxTaskTimeout), AllowLimitRegex: cfg.Worker.AllowLimitRegex},
		Run: jobRun(jr),
	}
	status, rc, err := runnerstream.Work(ctx, os.Stdin, c.App.Writer, o)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	return cli.Exit("", workerExit(status, rc))
}

// jobRun runs a checked job with jr.
func jobRun(jr *worker.JobRunner) runnerstream.RunFunc {
	return func(ctx context.Context, job *runnerstream.Job, onEvent func([]byte)) (int, string, error) {
		return jr.Run(ctx, job.Spec(), onEvent)
	}
}

// workerExit is the exit code of the worker stage: ansible-playbook's, as
// ansible-runner's worker exits, and 1 for a job that never ran.
func workerExit(status string, rc int) int {
	if status == "error" || rc < 0 {
		return exitFailed
	}
	return rc
}

func cleanupCommand() *cli.Command {
	return &cli.Command{
		Name:  "cleanup",
		Usage: "remove old private data directories of finished jobs (ansible-runner's worker cleanup)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file-pattern", Usage: "file `GLOB` of private data directories, e.g. '/tmp/ansible-worker-job-*'", Required: true},
			&cli.IntFlag{Name: "grace-period", Value: 60, Usage: "keep directories modified in the last `MINUTES` (0: none kept)"},
			&cli.StringSliceFlag{Name: "exclude-strings", Usage: "keep paths that contain one of these `STRINGS`"},
			&cli.StringSliceFlag{Name: "remove-images", Usage: "container `IMAGES` to remove: needs a container engine"},
			&cli.BoolFlag{Name: "image-prune", Usage: "prune container images: needs a container engine"},
			&cli.StringFlag{Name: "process-isolation-executable", Value: "podman", Usage: "the container engine `EXECUTABLE`"},
		},
		Action: cleanupAction,
	}
}

func cleanupAction(c *cli.Context) error {
	if len(c.StringSlice("remove-images")) > 0 || c.Bool("image-prune") {
		engine := c.String("process-isolation-executable")
		if _, err := exec.LookPath(engine); err != nil {
			return cli.Exit(fmt.Sprintf("--remove-images and --image-prune need a container engine, and %s is not installed; ansible-worker runs jobs without containers, so it has no images to remove", engine), exitUsage)
		}
		return cli.Exit("--remove-images and --image-prune: ansible-worker runs jobs without containers and leaves images to the container engine ("+engine+" image rm / image prune)", exitUsage)
	}
	removed, err := runnerstream.Cleanup(runnerstream.CleanupOptions{Pattern: c.String("file-pattern"),
		Grace: time.Duration(c.Int("grace-period")) * time.Minute, Exclude: c.StringSlice("exclude-strings")})
	for _, d := range removed {
		fmt.Fprintf(c.App.Writer, "Removed private data dir %s\n", d)
	}
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	fmt.Fprintf(c.App.Writer, "Removed %d private data directories\n", len(removed))
	return nil
}
