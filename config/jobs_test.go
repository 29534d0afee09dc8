package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// jobsConfig is a configuration whose jobs file holds text, in a playbook
// directory with site.yml, deploy/app.yml and inventory/hosts.
func jobsConfig(t *testing.T, text string) *Config {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"site.yml", "deploy/app.yml", "inventory/hosts"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("- hosts: all\n"), 0o644))
	}
	jobs := filepath.Join(t.TempDir(), "jobs.yml")
	require.NoError(t, os.WriteFile(jobs, []byte(text), 0o600))
	c := DefaultConfig()
	c.Worker.PlaybookDirectory, c.Worker.JobsFile = dir, jobs
	return c
}

func TestLoadJobs(t *testing.T) {
	c := jobsConfig(t, `
deploy:
  playbooks: [site.yml, deploy/app.yml]
  inventory: inventory/hosts
  extra_vars: {env: prod}
  timeout: 600
  parameters: [version]
any:
  playbooks: [site.yml]
  inventory: "web1,web2,"
none:
  playbooks: [site.yml]
  parameters: false
`)
	jobs, err := c.LoadJobs()
	require.NoError(t, err)
	require.Equal(t, &Job{Name: "deploy", Playbooks: []string{"site.yml", "deploy/app.yml"}, Inventory: "inventory/hosts",
		ExtraVars: map[string]any{"env": "prod"}, Timeout: 600, Parameters: ParameterRule{Names: []string{"version"}}}, jobs["deploy"])
	require.True(t, jobs["any"].Parameters.Any, "parameters default to any value")
	require.NoError(t, jobs["any"].Parameters.Check([]any{"a", 1}))
	require.NoError(t, jobs["deploy"].Parameters.Check(map[string]any{"version": "1"}))
	require.ErrorContains(t, jobs["deploy"].Parameters.Check(map[string]any{"version": "1", "x": 2}), `parameters: "x" not accepted by this job (accepted: version)`)
	require.ErrorContains(t, jobs["deploy"].Parameters.Check([]any{"a"}), "takes a mapping with the keys version")
	require.ErrorContains(t, jobs["none"].Parameters.Check(map[string]any{}), "this job takes none")
	require.NoError(t, jobs["none"].Parameters.Check(nil), "null is no parameters")

	c.Worker.JobsFile = ""
	jobs, err = c.LoadJobs()
	require.NoError(t, err)
	require.Nil(t, jobs)
}

// Every problem of a jobs file is reported at once, with its line.
func TestLoadJobsProblems(t *testing.T) {
	c := jobsConfig(t, `ok:
  playbooks: [site.yml]
bad:
  playbooks: [missing.yml, ../../etc/passwd, /etc/hosts, inventory]
  inventory: nowhere
  colour: red
  timeout: -1
  parameters: {a: 1}
"bad name!":
  playbooks: [site.yml]
empty:
  inventory: inventory/hosts
scalar: site.yml
`)
	_, err := c.LoadJobs()
	require.Error(t, err)
	f := c.Worker.JobsFile
	for _, want := range []string{
		f + ":4: job bad: playbooks[0]: missing.yml does not exist in worker.playbook_directory",
		f + ":4: job bad: playbooks[1]: ../../etc/passwd",
		f + `:4: job bad: playbooks[2]: "/etc/hosts" must be a path relative to worker.playbook_directory`,
		f + ":4: job bad: playbooks[3]: inventory is not a file",
		f + ":5: job bad: inventory: nowhere does not exist",
		f + `:6: job bad: unknown key "colour" (known: playbooks, inventory, extra_vars, timeout, parameters)`,
		f + ":7: job bad: timeout: must be 0 (worker.task_timeout) or more seconds",
		f + `:8: job bad: parameters: must be "any", false, or a list of the keys the job accepts`,
		f + ":9: ",
		f + ":12: job empty: playbooks: at least one playbook is needed",
		f + ":13: job scalar: must be a mapping",
	} {
		require.Contains(t, err.Error(), want)
	}
	require.Equal(t, 11, strings.Count(err.Error(), "\n")+1, err.Error())
}

func TestLoadJobsNotYAML(t *testing.T) {
	c := jobsConfig(t, "deploy: [unclosed\n")
	_, err := c.LoadJobs()
	require.ErrorContains(t, err, c.Worker.JobsFile+":")
	c = jobsConfig(t, "- a\n- b\n")
	_, err = c.LoadJobs()
	require.ErrorContains(t, err, "a jobs file is a mapping of job names to jobs")
}

// allow_playbooks takes a list, true (every playbook) or false (none:
// named jobs only), and prints as it was given.
func TestAllowPlaybooksFalse(t *testing.T) {
	for text, want := range map[string]struct {
		off      bool
		patterns []string
	}{
		"allow_playbooks: false":        {true, nil},
		"allow_playbooks: true":         {false, []string{}},
		"allow_playbooks: [a.yml, b/*]": {false, []string{"a.yml", "b/*"}},
		"allow_playbooks: []":           {false, []string{}},
	} {
		path := filepath.Join(t.TempDir(), "c.yml")
		require.NoError(t, os.WriteFile(path, []byte("worker:\n  "+text+"\n"), 0o600))
		c, err := LoadConfig(path, envMap{}.lookup)
		require.NoError(t, err, text)
		require.Equal(t, want.off, c.Worker.AllowPlaybooks.Off(), text)
		require.Equal(t, want.patterns, []string(c.Worker.AllowPlaybooks.Patterns()), text)
		out, err := c.YAML()
		require.NoError(t, err)
		if want.off {
			require.Contains(t, string(out), "allow_playbooks: false")
		}
	}
}
