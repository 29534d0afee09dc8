package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kballard/go-shellquote"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/schemas"
)

func submitCommand() *cli.Command {
	return &cli.Command{
		Name:      "submit",
		Usage:     "submit a task from flags or a JSON file; --wait follows it live",
		ArgsUsage: "[TASK.json | -]",
		Description: "With --private-data-dir, the task ships an ansible-runner private data directory through\n" +
			"the JetStream Object Store instead of naming a playbook of the worker's directory (the workers must\n" +
			"allow it: worker.allow_runner_jobs); -p is then relative to DIR/project, -i to DIR, and --wait writes\n" +
			"the artifacts into DIR/artifacts/<ident>/ as `ansible-runner process` does:\n" +
			"  ansible-worker submit --private-data-dir ./demo -p test.yml --wait",
		Flags: withCommon(
			groupFlag(),
			&cli.StringFlag{Name: "task-id", Usage: "task `ID`", DefaultText: "random"},
			&cli.StringFlag{Name: "playbook", Aliases: []string{"p"}, Usage: "playbook `PATH` relative to the playbook directory"},
			&cli.StringFlag{Name: "job", Aliases: []string{"j"}, Usage: "run the named job `NAME` of the workers' jobs file instead of a playbook"},
			&cli.StringFlag{Name: "parameters", Usage: "with --job: the job's `PARAMETERS` (JSON or YAML), passed to its playbooks as the extra var parameters"},
			&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `PATH`, or an inline host list ending in ','"},
			&cli.StringSliceFlag{Name: "extra-vars", Aliases: []string{"e"}, Usage: "extra `VARS` as in ansible-playbook -e: JSON or YAML, k=v pairs (shell quoting; values are strings), or @FILE (JSON or YAML); repeatable, later wins"},
			&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "host `PATTERN`"},
			&cli.StringSliceFlag{Name: "tags", Aliases: []string{"t"}, Usage: "only tasks with these `TAGS` (comma separated, repeatable)"},
			&cli.StringSliceFlag{Name: "skip-tags", Usage: "skip tasks with these `TAGS` (comma separated, repeatable)"},
			&cli.BoolFlag{Name: "v", Usage: "more output: -v, -vv, -vvv or -vvvv set the verbosity to 1 … 4, as in ansible-playbook"},
			// -vv is a flag of its own: the flag package takes "-vv" as one name.
			&cli.BoolFlag{Name: "vv", Hidden: true}, &cli.BoolFlag{Name: "vvv", Hidden: true}, &cli.BoolFlag{Name: "vvvv", Hidden: true},
			&cli.IntFlag{Name: "verbosity", Usage: "verbosity `N`, 0 to 4 (the larger of this and the count of -v wins)", DefaultText: "0"},
			&cli.BoolFlag{Name: "check", Aliases: []string{"C"}, Usage: "check mode (dry run)"},
			&cli.BoolFlag{Name: "diff", Aliases: []string{"D"}, Usage: "show diffs"},
			&cli.IntFlag{Name: "forks", Aliases: []string{"f"}, Usage: "`N` parallel processes", DefaultText: "5"},
			&cli.IntFlag{Name: "timeout", Usage: "task timeout in `SECONDS`", DefaultText: "worker.task_timeout"},
			&cli.BoolFlag{Name: "git-pull", Usage: "git pull the playbook directory first"},
			&cli.BoolFlag{Name: "wait", Aliases: []string{"w"}, Usage: "follow the task: stream its output and exit with its result"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "with --wait, print no playbook output, only the result"},
			&cli.StringFlag{Name: "private-data-dir", Usage: "ship the ansible-runner private data `DIR` and run it (see above)"},
			&cli.StringFlag{Name: "ident", Usage: "with --private-data-dir: the run's `ID`, which is also its task id", DefaultText: "random"},
		),
		Action: submitAction,
	}
}

func submitAction(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if c.IsSet("private-data-dir") || c.IsSet("ident") {
		return submitJobAction(c, cfg)
	}
	body, err := buildTask(c)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	// Checked before connecting: a bad request needs no server.
	if _, err := schemas.ParseTaskRequest(body); err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	cl, err := connect(c, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	rcpt, err := cl.SubmitJSON(c.Context, body)
	if err != nil {
		return exitFor(err)
	}
	fmt.Fprintf(c.App.ErrWriter, "submitted task %s to %s (stream sequence %d)\n", rcpt.TaskID, rcpt.Subject, rcpt.Sequence)
	if !c.Bool("wait") {
		fmt.Fprintln(c.App.Writer, rcpt.TaskID)
		return nil
	}
	defer warnUnattended(c, cl, rcpt.TaskID)()
	return follow(c, cl, rcpt.TaskID, !c.Bool("quiet"))
}

// buildTask makes the task JSON from a file argument and/or flags; flags
// override the file's fields.
func buildTask(c *cli.Context) ([]byte, error) {
	task, err := readTaskFile(c)
	if err != nil {
		return nil, err
	}
	if v := c.String("task-id"); v != "" {
		task["task_id"] = v
	}
	if _, ok := task["task_id"]; !ok {
		task["task_id"] = client.NewTaskID()
	}
	if err := applyTaskFlags(c, task); err != nil {
		return nil, err
	}
	return json.Marshal(task)
}

// readTaskFile reads the task file argument ("-": stdin) as a JSON
// object; no argument gives an empty task.
func readTaskFile(c *cli.Context) (map[string]any, error) {
	task := map[string]any{}
	if c.NArg() > 1 {
		return nil, fmt.Errorf("submit takes one task file and flags go before it; got %q", c.Args().Slice())
	}
	if c.NArg() == 0 {
		return task, nil
	}
	var b []byte
	var err error
	if name := c.Args().First(); name == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, schemas.MaxTaskSize+1))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read task file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&task); err != nil {
		return nil, fmt.Errorf("task file is not a JSON object: %w", err)
	}
	return task, nil
}

// applyTaskFlags sets the task fields the flags give, over the file's.
func applyTaskFlags(c *cli.Context, task map[string]any) error {
	if c.IsSet("parameters") {
		v, err := parseValueDoc(c.String("parameters"))
		if err != nil {
			return err
		}
		task["parameters"] = v
	}
	for _, f := range []struct{ flag, key string }{{"playbook", "playbook"}, {"job", "job"}, {"inventory", "inventory"}, {"limit", "limit"}} {
		if c.IsSet(f.flag) {
			task[f.key] = c.String(f.flag)
		}
	}
	for _, f := range []struct{ flag, key string }{{"tags", "tags"}, {"skip-tags", "skip_tags"}} {
		if c.IsSet(f.flag) {
			task[f.key] = splitList(strings.Join(c.StringSlice(f.flag), ","))
		}
	}
	if n := max(c.Int("verbosity"), countV(c)); c.IsSet("verbosity") || n > 0 {
		task["verbosity"] = n
	}
	for _, f := range []struct{ flag, key string }{{"forks", "forks"}, {"timeout", "timeout"}} {
		if c.IsSet(f.flag) {
			task[f.key] = c.Int(f.flag)
		}
	}
	for _, f := range []struct{ flag, key string }{{"check", "check_mode"}, {"diff", "diff_mode"}, {"git-pull", "git_pull"}} {
		if c.IsSet(f.flag) {
			task[f.key] = c.Bool(f.flag)
		}
	}
	if c.IsSet("extra-vars") {
		vars := map[string]any{}
		if old, ok := task["extra_vars"].(map[string]any); ok {
			vars = old
		}
		for _, e := range c.StringSlice("extra-vars") {
			m, err := ParseExtraVars(e)
			if err != nil {
				return err
			}
			for k, v := range m {
				vars[k] = v
			}
		}
		task["extra_vars"] = vars
	}
	return nil
}

// countV is the verbosity of -v flags, counted as ansible-playbook does:
// "-vv -v" is 3.
func countV(c *cli.Context) int {
	n := 0
	for i, name := range []string{"v", "vv", "vvv", "vvvv"} {
		n += (i + 1) * c.Count(name)
	}
	return n
}

// ParseExtraVars reads one --extra-vars value the way ansible-playbook -e
// does: "@FILE" (JSON or YAML), a JSON or YAML object (flow or block), or
// k=v pairs split with shell quoting, whose values are strings.
func ParseExtraVars(s string) (map[string]any, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return map[string]any{}, nil
	case strings.HasPrefix(s, "@"):
		b, err := os.ReadFile(s[1:])
		if err != nil {
			return nil, fmt.Errorf("extra vars file: %w", err)
		}
		return parseVarsDoc(b, s[1:])
	case strings.HasPrefix(s, "{") || strings.HasPrefix(s, "["):
		return parseVarsDoc([]byte(s), "--extra-vars")
	case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "."):
		// ansible-playbook refuses a bare file name the same way.
		return nil, fmt.Errorf("extra vars %q: prepend a file name with '@'", s)
	}
	kv, kvErr := parseKV(s)
	if kvErr == nil {
		return kv, nil
	}
	// Not k=v pairs: a YAML block ("a: 1\nb: x") is the one other form.
	if m, err := parseVarsDoc([]byte(s), "--extra-vars"); err == nil {
		return m, nil
	}
	return nil, kvErr
}

// parseKV reads "a=1 b='x y'": words split as a POSIX shell does, each
// key=value with a non-empty key; every value is a string, as in Ansible.
func parseKV(s string) (map[string]any, error) {
	words, err := shellquote.Split(s)
	if err != nil {
		return nil, fmt.Errorf("extra vars %q: %w", s, err)
	}
	out := map[string]any{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" || strings.ContainsAny(k, ": \t") {
			return nil, fmt.Errorf("extra vars: %q is not key=value (use JSON or YAML for structured values)", w)
		}
		out[k] = v
	}
	return out, nil
}

// parseValueDoc reads a JSON or YAML value (--parameters).
func parseValueDoc(s string) (any, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err == nil && !dec.More() {
		return v, nil
	}
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("--parameters is neither JSON nor YAML: %w", err)
	}
	return v, nil
}

// parseVarsDoc reads a JSON or YAML document that must be an object.
func parseVarsDoc(b []byte, what string) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err == nil && m != nil {
		return m, nil
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is neither a JSON nor a YAML object: %w", what, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%s is not an object", what)
	}
	return m, nil
}
