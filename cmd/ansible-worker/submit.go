package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

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
		Flags: withCommon(
			&cli.StringFlag{Name: "group", Aliases: []string{"g"}, Usage: "worker group (default worker.group_name)"},
			&cli.StringFlag{Name: "task-id", Usage: "task id (default: random)"},
			&cli.StringFlag{Name: "playbook", Aliases: []string{"p"}, Usage: "playbook `PATH` relative to the playbook directory"},
			&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `PATH`, or an inline host list ending in ','"},
			&cli.StringSliceFlag{Name: "extra-vars", Aliases: []string{"e"}, Usage: "extra vars as JSON/YAML, k=v pairs, or @FILE; repeatable, later wins"},
			&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "host `PATTERN`"},
			&cli.StringSliceFlag{Name: "tags", Aliases: []string{"t"}, Usage: "only tasks with these tags (comma separated, repeatable)"},
			&cli.StringSliceFlag{Name: "skip-tags", Usage: "skip tasks with these tags"},
			&cli.IntFlag{Name: "verbosity", Aliases: []string{"v"}, Usage: "0 to 4"},
			&cli.BoolFlag{Name: "check", Aliases: []string{"C"}, Usage: "check mode (dry run)"},
			&cli.BoolFlag{Name: "diff", Aliases: []string{"D"}, Usage: "show diffs"},
			&cli.IntFlag{Name: "forks", Aliases: []string{"f"}, Usage: "parallel processes (default 5)"},
			&cli.IntFlag{Name: "timeout", Usage: "task timeout in `SECONDS` (default worker.task_timeout)"},
			&cli.BoolFlag{Name: "git-pull", Usage: "git pull the playbook directory first"},
			&cli.BoolFlag{Name: "wait", Aliases: []string{"w"}, Usage: "follow the task: stream its output and exit with its result"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "with --wait, print no playbook output, only the result"},
		),
		Action: submitAction,
	}
}

func submitAction(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
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
	return follow(c.Context, cl, rcpt.TaskID, !c.Bool("quiet"), c.App.Writer, c.App.ErrWriter)
}

// buildTask makes the task JSON from a file argument and/or flags; flags
// override the file's fields.
func buildTask(c *cli.Context) ([]byte, error) {
	task := map[string]any{}
	if c.NArg() > 1 {
		return nil, fmt.Errorf("submit takes one task file and flags go before it; got %q", c.Args().Slice())
	}
	if c.NArg() == 1 {
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
	}
	if v := c.String("task-id"); v != "" {
		task["task_id"] = v
	}
	if _, ok := task["task_id"]; !ok {
		task["task_id"] = client.NewTaskID()
	}
	for _, f := range []struct{ flag, key string }{{"playbook", "playbook"}, {"inventory", "inventory"}, {"limit", "limit"}} {
		if c.IsSet(f.flag) {
			task[f.key] = c.String(f.flag)
		}
	}
	for _, f := range []struct{ flag, key string }{{"tags", "tags"}, {"skip-tags", "skip_tags"}} {
		if c.IsSet(f.flag) {
			task[f.key] = splitList(strings.Join(c.StringSlice(f.flag), ","))
		}
	}
	for _, f := range []struct{ flag, key string }{{"verbosity", "verbosity"}, {"forks", "forks"}, {"timeout", "timeout"}} {
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
				return nil, err
			}
			for k, v := range m {
				vars[k] = v
			}
		}
		task["extra_vars"] = vars
	}
	return json.Marshal(task)
}

// ParseExtraVars reads one --extra-vars value the way ansible-playbook -e
// does: "@FILE" (JSON or YAML), a JSON or YAML object, or k=v pairs
// separated by spaces (values are strings; quotes group).
func ParseExtraVars(s string) (map[string]any, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return map[string]any{}, nil
	}
	if strings.HasPrefix(s, "@") {
		b, err := os.ReadFile(s[1:])
		if err != nil {
			return nil, fmt.Errorf("extra vars file: %w", err)
		}
		return parseVarsDoc(b, s[1:])
	}
	if strings.HasPrefix(s, "{") {
		return parseVarsDoc([]byte(s), "--extra-vars")
	}
	out := map[string]any{}
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("extra vars: %q is not key=value (use JSON for structured values)", w)
		}
		out[k] = v
	}
	return out, nil
}

func parseVarsDoc(b []byte, what string) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err == nil {
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

// splitWords splits on spaces, honouring single and double quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("extra vars: unterminated quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
