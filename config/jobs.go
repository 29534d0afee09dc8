package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Job is one named job of the jobs file (worker.jobs_file): what a request
// that names it runs.
type Job struct {
	// Name is the job's name, the key in the file.
	Name string
	// Playbooks run in this order, each once the one before succeeded;
	// paths relative to worker.playbook_directory.
	Playbooks []string
	// Inventory is the inventory of every playbook, relative to the
	// playbook directory, or an inline host list; "" means Ansible's own.
	Inventory string
	// ExtraVars are the operator's extra vars; a request's extra_vars
	// win over them, and "parameters" is always the request's.
	ExtraVars map[string]any
	// Timeout in seconds bounds the whole job; 0 means worker.task_timeout.
	Timeout int
	// Parameters says which request parameters the job accepts.
	Parameters ParameterRule
}

// ParameterRule says which request parameters a job accepts: any value
// (Any, the default), none (Names empty), or a mapping whose keys are
// among Names.
type ParameterRule struct {
	Any   bool
	Names []string
}

// Check returns why params are not accepted, or nil. Null is always
// accepted: it means no parameters.
func (r ParameterRule) Check(params any) error {
	if r.Any || params == nil {
		return nil
	}
	if len(r.Names) == 0 {
		return errors.New("parameters: this job takes none")
	}
	m, ok := params.(map[string]any)
	if !ok {
		return fmt.Errorf("parameters: this job takes a mapping with the keys %s", strings.Join(r.Names, ", "))
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(r.Names, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("parameters: %s not accepted by this job (accepted: %s)", strings.Join(unknown, ", "), strings.Join(r.Names, ", "))
	}
	return nil
}

// Jobs are the named jobs of a jobs file, by name.
type Jobs map[string]*Job

// jobKeys are the keys of a job, for the unknown-key message.
var jobKeys = []string{"playbooks", "inventory", "extra_vars", "timeout", "parameters"}

// LoadJobs reads the jobs file (worker.jobs_file) and checks it against
// the playbook directory: every problem at once, each with the file and
// line, joined with errors.Join. No jobs file: nil and no error.
func (c *Config) LoadJobs() (Jobs, error) {
	if c.Worker.JobsFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(c.Worker.JobsFile)
	if err != nil {
		return nil, fmt.Errorf("worker.jobs_file: %w", err)
	}
	l := &jobsLoader{file: c.Worker.JobsFile, dir: c.Worker.PlaybookDirectory}
	jobs := l.load(data)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return jobs, nil
}

// jobsLoader collects the problems of a jobs file.
type jobsLoader struct {
	file, dir string
	errs      []error
}

func (l *jobsLoader) bad(n *yaml.Node, format string, a ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s:%d: %s", l.file, n.Line, fmt.Sprintf(format, a...)))
}

func (l *jobsLoader) load(data []byte) Jobs {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %w", l.file, err))
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		l.bad(root, "a jobs file is a mapping of job names to jobs")
		return nil
	}
	jobs := Jobs{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		name := root.Content[i]
		if err := schemas.CheckJobName("job name", name.Value); err != nil {
			l.bad(name, "%v", err)
			continue
		}
		if _, dup := jobs[name.Value]; dup {
			l.bad(name, "job %s is defined twice", name.Value)
			continue
		}
		if j := l.job(name.Value, root.Content[i+1]); j != nil {
			jobs[name.Value] = j
		}
	}
	if len(jobs) == 0 && len(l.errs) == 0 {
		l.bad(root, "no jobs")
	}
	return jobs
}

// job reads and checks one job.
func (l *jobsLoader) job(name string, n *yaml.Node) *Job {
	if n.Kind != yaml.MappingNode {
		l.bad(n, "job %s: must be a mapping (%s)", name, strings.Join(jobKeys, ", "))
		return nil
	}
	j := &Job{Name: name, Parameters: ParameterRule{Any: true}}
	before := len(l.errs)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		l.jobKey(j, key, val)
	}
	if len(j.Playbooks) == 0 {
		l.bad(n, "job %s: playbooks: at least one playbook is needed", name)
	}
	if len(l.errs) > before {
		return nil
	}
	return j
}

// jobKey reads one key of job j.
func (l *jobsLoader) jobKey(j *Job, key, val *yaml.Node) {
	var err error
	switch key.Value {
	case "playbooks":
		err = val.Decode(&j.Playbooks)
		if err == nil {
			l.checkPlaybooks(j, val)
		}
	case "inventory":
		err = val.Decode(&j.Inventory)
		if err == nil && j.Inventory != "" && !strings.HasSuffix(j.Inventory, ",") {
			l.checkPath(val, j.Name, "inventory", j.Inventory, true)
		}
	case "extra_vars":
		err = val.Decode(&j.ExtraVars)
	case "timeout":
		err = val.Decode(&j.Timeout)
		if err == nil && j.Timeout < 0 {
			err = errors.New("must be 0 (worker.task_timeout) or more seconds")
		}
	case "parameters":
		j.Parameters, err = parameterRule(val)
	default:
		l.bad(key, "job %s: unknown key %q (known: %s)", j.Name, key.Value, strings.Join(jobKeys, ", "))
		return
	}
	if err != nil {
		l.bad(val, "job %s: %s: %v", j.Name, key.Value, yamlMessage(err))
	}
}

// checkPlaybooks checks that each playbook is a file inside the playbook
// directory.
func (l *jobsLoader) checkPlaybooks(j *Job, val *yaml.Node) {
	for i, pb := range j.Playbooks {
		at := val
		if i < len(val.Content) {
			at = val.Content[i]
		}
		l.checkPath(at, j.Name, fmt.Sprintf("playbooks[%d]", i), pb, false)
	}
}

// checkPath checks that rel names a file (or, when dirOK, a directory)
// inside the playbook directory, symlinks resolved.
func (l *jobsLoader) checkPath(n *yaml.Node, job, key, rel string, dirOK bool) {
	if rel == "" || filepath.IsAbs(rel) || strings.HasPrefix(rel, "-") {
		l.bad(n, "job %s: %s: %q must be a path relative to worker.playbook_directory", job, key, rel)
		return
	}
	base, err := filepath.EvalSymlinks(l.dir)
	if err != nil {
		l.bad(n, "job %s: %s: worker.playbook_directory: %v", job, key, err)
		return
	}
	real, err := filepath.EvalSymlinks(filepath.Join(base, rel))
	if err != nil {
		l.bad(n, "job %s: %s: %s does not exist in worker.playbook_directory", job, key, rel)
		return
	}
	if inside, _ := filepath.Rel(base, real); inside == ".." || strings.HasPrefix(inside, ".."+string(filepath.Separator)) {
		l.bad(n, "job %s: %s: %s leads outside worker.playbook_directory", job, key, rel)
		return
	}
	if st, err := os.Stat(real); err != nil || (st.IsDir() && !dirOK) {
		l.bad(n, "job %s: %s: %s is not a file", job, key, rel)
	}
}

// parameterRule reads a job's parameters key: false or [] for none, a
// list of names for a mapping with those keys, "any" or true for any
// value.
func parameterRule(n *yaml.Node) (ParameterRule, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!bool":
			var b bool
			_ = n.Decode(&b)
			return ParameterRule{Any: b, Names: []string{}}, nil
		case "!!str":
			if n.Value == "any" {
				return ParameterRule{Any: true}, nil
			}
		}
		return ParameterRule{}, errors.New(`must be "any", false, or a list of the keys the job accepts`)
	}
	names := []string{}
	if err := n.Decode(&names); err != nil {
		return ParameterRule{}, errors.New(`must be "any", false, or a list of the keys the job accepts`)
	}
	for _, k := range names {
		if !schemas.ValidVarName(k) {
			return ParameterRule{}, fmt.Errorf("%q is not a variable name", k)
		}
	}
	return ParameterRule{Names: names}, nil
}

// yamlMessage is a YAML type error without the library's "yaml: " prefix.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}
