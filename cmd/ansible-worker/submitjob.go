package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/runnerstream"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// submitJobAction is submit --private-data-dir: the directory goes through
// the Object Store, a worker runs it, and --wait brings its artifacts back.
func submitJobAction(c *cli.Context, cfg *config.Config) error {
	job, err := buildRunnerJob(c)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	cl, err := connect(c, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	rcpt, err := cl.SubmitRunnerJob(c.Context, job)
	if err != nil {
		return exitFor(err)
	}
	fmt.Fprintf(c.App.ErrWriter, "submitted task %s with %s to %s (stream sequence %d)\n", rcpt.TaskID, job.Dir, rcpt.Subject, rcpt.Sequence)
	if !c.Bool("wait") {
		fmt.Fprintln(c.App.Writer, rcpt.TaskID)
		return nil
	}
	defer warnUnattended(c, cl, rcpt.TaskID)()
	final, err := followFinal(c, cl, rcpt.TaskID, !c.Bool("quiet"))
	if err != nil {
		return err
	}
	art, err := cl.FetchArtifacts(c.Context, rcpt.TaskID, job.Dir)
	switch {
	case err == nil:
		fmt.Fprintf(c.App.ErrWriter, "artifacts in %s\n", art)
	case errors.Is(err, fs.ErrNotExist) && final.State != schemas.StateSuccess:
		// Refused before it ran: the summary says why.
	default:
		fmt.Fprintln(c.App.ErrWriter, summary(final))
		return cli.Exit(err.Error(), exitUnreachable)
	}
	fmt.Fprintln(c.App.ErrWriter, summary(final))
	return cli.Exit("", exitForState(final.State))
}

// buildRunnerJob makes the job of the flags: the run flags become the
// kwargs ansible-runner's transmit would send.
func buildRunnerJob(c *cli.Context) (client.RunnerJob, error) {
	dir := c.String("private-data-dir")
	if dir == "" {
		return client.RunnerJob{}, errors.New("--ident goes with --private-data-dir")
	}
	if c.NArg() > 0 {
		return client.RunnerJob{}, fmt.Errorf("a task file does not go with --private-data-dir; got %q", c.Args().Slice())
	}
	if c.IsSet("git-pull") {
		return client.RunnerJob{}, errors.New("--git-pull does not go with --private-data-dir: the directory is shipped as it is")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return client.RunnerJob{}, fmt.Errorf("--private-data-dir %s is not a directory", dir)
	}
	id, ident := c.String("task-id"), c.String("ident")
	if id != "" && ident != "" && id != ident {
		return client.RunnerJob{}, fmt.Errorf("--ident %q and --task-id %q differ: a runner job's ident is its task id", ident, id)
	}
	if id == "" {
		id = ident
	}
	if c.String("playbook") == "" {
		return client.RunnerJob{}, errors.New("--private-data-dir needs -p PLAYBOOK (relative to DIR/project)")
	}
	kw, err := runnerKwargs(c)
	if err != nil {
		return client.RunnerJob{}, err
	}
	return client.RunnerJob{TaskID: id, Dir: dir, Kwargs: kw, Timeout: c.Int("timeout")}, nil
}

// runnerKwargs are the kwargs of the run flags.
func runnerKwargs(c *cli.Context) (runnerstream.Kwargs, error) {
	kw := runnerstream.Kwargs{Playbook: c.String("playbook"), Limit: c.String("limit")}
	if inv := c.String("inventory"); inv != "" {
		kw.Inventory = inv
	}
	if c.IsSet("forks") {
		f := c.Int("forks")
		kw.Forks = &f
	}
	if n := max(c.Int("verbosity"), countV(c)); n > 0 {
		kw.Verbosity = &n
	}
	kw.Tags = strings.Join(splitList(strings.Join(c.StringSlice("tags"), ",")), ",")
	kw.SkipTags = strings.Join(splitList(strings.Join(c.StringSlice("skip-tags"), ",")), ",")
	var cmdline []string
	for _, f := range []struct{ flag, opt string }{{"check", "--check"}, {"diff", "--diff"}} {
		if c.Bool(f.flag) {
			cmdline = append(cmdline, f.opt)
		}
	}
	kw.Cmdline = strings.Join(cmdline, " ")
	if c.IsSet("extra-vars") {
		kw.ExtraVars = map[string]any{}
		for _, e := range c.StringSlice("extra-vars") {
			m, err := ParseExtraVars(e)
			if err != nil {
				return kw, err
			}
			for k, v := range m {
				kw.ExtraVars[k] = v
			}
		}
	}
	return kw, nil
}
