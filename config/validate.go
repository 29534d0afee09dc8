package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Validate checks the configuration and returns every problem at once,
// each naming its key, joined with errors.Join. It does not check that the
// playbook directory exists; see CheckPlaybookDir. The messages have
// every secret masked: the user info of URLs, the secret fields and header
// values, and the texts of 4 characters or more that ${VAR} references
// gave; errors.Is and errors.As still see the wrapped errors.
func (c *Config) Validate() error {
	return c.redact(errors.Join(c.validationProblems()...))
}

// validationProblems returns every problem of c, each naming its key, not
// redacted.
func (c *Config) validationProblems() []error {
	return slices.Concat(
		validateLogging(c),
		validateMQTT(c.MQTT),
		validateWorker(c.Worker),
		validateNATS(c.NATS),
	)
}

// problems are the problems a validation finds, in the order found.
type problems []error

// addf adds the problem fmt.Errorf(format, a...).
func (p *problems) addf(format string, a ...any) { *p = append(*p, fmt.Errorf(format, a...)) }

// add adds err, unless it is nil.
func (p *problems) add(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

// positiveSeconds adds a problem unless v, the value of key, is a finite
// number of seconds more than 0.
func (p *problems) positiveSeconds(key string, v float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		p.addf("%s: must be more than 0 seconds", key)
	}
}

// nonNegativeSeconds adds a problem unless v, the value of key, is a
// finite number of seconds, 0 or more.
func (p *problems) nonNegativeSeconds(key string, v float64) {
	if !(v >= 0) || math.IsInf(v, 0) {
		p.addf("%s: must be 0 or more seconds", key)
	}
}

// validateLogging returns the problems of log_level, log_format and
// log_levels.
func validateLogging(c *Config) problems {
	var p problems
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		p.addf("log_level: %w", err)
	}
	switch strings.ToLower(c.LogFormat) {
	case "text", "json", "":
	default:
		p.addf("log_format: unknown format %q: use text or json", c.LogFormat)
	}
	return append(p, logLevelsProblems(c.LogLevels)...)
}

// validateWorker returns the problems of the worker section.
func validateWorker(w WorkerConfig) problems {
	var p problems
	checkWorkerIDs(&p, w)
	checkWorkerRuns(&p, w)
	checkWorkerAllowLists(&p, w)
	if w.HTTPListen != "" {
		if err := checkHostPort(w.HTTPListen, 0); err != nil {
			p.addf("worker.http_listen: %w", err)
		}
	}
	p.positiveSeconds("worker.status_interval", w.StatusInterval)
	p.positiveSeconds("worker.ack_wait", w.AckWait)
	p.nonNegativeSeconds("worker.shutdown_grace", w.ShutdownGrace)
	p.nonNegativeSeconds("worker.kill_grace", w.KillGrace)
	p.nonNegativeSeconds("worker.git_timeout", w.GitTimeout)
	if w.DataDir == "" {
		p.addf("worker.data_dir: must not be empty")
	}
	return p
}

// checkWorkerIDs checks the names the worker puts in subjects and
// statuses: the group, the topic prefix and the worker id.
func checkWorkerIDs(p *problems, w WorkerConfig) {
	p.add(schemas.CheckID("worker.group_name", w.GroupName))
	p.add(schemas.CheckID("worker.topic_prefix", w.TopicPrefix))
	if w.WorkerID != "" {
		p.add(schemas.CheckID("worker.worker_id", w.WorkerID))
	}
}

// checkWorkerRuns checks what the worker runs and how many at once: the
// playbook directory, the queue, the timeouts, the deliveries, the
// ansible-playbook executable, the jobs file and the forks.
func checkWorkerRuns(p *problems, w WorkerConfig) {
	if w.PlaybookDirectory == "" {
		p.addf("worker.playbook_directory: must not be empty")
	}
	if w.MaxQueueSize < 0 {
		p.addf("worker.max_queue_size: must be 0 (no limit) or more")
	}
	if w.TaskTimeout < 0 {
		p.addf("worker.task_timeout: must be 0 (none) or more seconds")
	}
	if w.Concurrency < 1 {
		p.addf("worker.concurrency: must be 1 or more")
	}
	if w.MaxDeliver < 1 {
		p.addf("worker.max_deliver: must be 1 or more")
	}
	if strings.TrimSpace(w.AnsiblePlaybook) == "" {
		p.addf("worker.ansible_playbook: must not be empty")
	}
	if w.JobsFile != "" {
		p.add(checkFile("worker.jobs_file", w.JobsFile))
	}
	if w.MaxForks < 1 {
		p.addf("worker.max_forks: must be 1 or more")
	}
	if w.MaxTaskTimeout < 0 {
		p.addf("worker.max_task_timeout: must be 0 (no bound) or more seconds")
	} else if w.MaxTaskTimeout > 0 && (w.TaskTimeout == 0 || w.TaskTimeout > w.MaxTaskTimeout) {
		p.addf("worker.task_timeout: %d is more than worker.max_task_timeout %d (0 means no timeout)", w.TaskTimeout, w.MaxTaskTimeout)
	}
}

// checkWorkerAllowLists checks worker.allow_extra_vars and
// worker.allow_playbooks.
func checkWorkerAllowLists(p *problems, w WorkerConfig) {
	for i, name := range w.AllowExtraVars {
		if !schemas.ValidVarName(name) {
			p.addf("worker.allow_extra_vars[%d]: %q is not a variable name", i, name)
		}
	}
	for i, pat := range w.AllowPlaybooks.Patterns() {
		if strings.TrimSpace(pat) == "" {
			p.addf("worker.allow_playbooks[%d]: is empty", i)
		} else if _, err := path.Match(pat, ""); err != nil {
			p.addf("worker.allow_playbooks[%d]: %q is not a valid pattern", i, pat)
		}
	}
}

// checkHostPort checks a host:port listen address; the port may be as low
// as minPort (-1 or 0 pick a free port where that is allowed).
func checkHostPort(s string, minPort int) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Errorf("%q: bad port %q", s, port)
	}
	return nil
}
