package worker

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Progress follows a run's events and keeps what TaskStatus reports: the
// PLAY RECAP counts, the merged set_stats output and the reason of a failure.
// It is safe for concurrent use.
type Progress struct {
	mu       sync.Mutex
	counts   schemas.Counts
	output   map[string]any
	failures []string
	errLines []string
	// pointing: the error block quotes an offending line whose "^ here"
	// marker is still to come.
	pointing bool
	lastText []string // the last lines of output, for a failure nothing else explains
	final    bool     // counts come from playbook_on_stats
	changed  bool
	base     schemas.Counts // the recaps of a job's earlier playbooks
}

// NewProgress returns an empty Progress.
func NewProgress() *Progress { return &Progress{output: map[string]any{}} }

// eventFields are the parts of event_data Progress reads.
type eventFields struct {
	Host         string `json:"host"`
	Task         string `json:"task"`
	IgnoreErrors bool   `json:"ignore_errors"`
	Res          struct {
		Changed      bool   `json:"changed"`
		Msg          any    `json:"msg"`
		Stderr       string `json:"stderr"`
		AnsibleStats *struct {
			Data map[string]any `json:"data"`
		} `json:"ansible_stats"`
	} `json:"res"`
	OK       map[string]int `json:"ok"`
	Changed  map[string]int `json:"changed"`
	Failures map[string]int `json:"failures"`
	Skipped  map[string]int `json:"skipped"`
	Dark     map[string]int `json:"dark"`
}

// Observe updates the figures from one event.
func (p *Progress) Observe(ev *schemas.Event) {
	switch ev.Event {
	case "playbook_on_task_start", "runner_on_ok", "runner_on_failed", "runner_on_skipped",
		"runner_on_unreachable", "playbook_on_stats":
	case "verbose", "error":
		p.observeText(ev.Stdout)
		return
	default:
		return
	}
	var f eventFields
	if ev.Event != "playbook_on_task_start" {
		if err := json.Unmarshal(ev.EventData, &f); err != nil {
			return
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changed = true
	c := &p.counts
	switch ev.Event {
	case "playbook_on_task_start":
		c.Total++
	case "runner_on_ok":
		if !p.final {
			c.OK++
			if f.Res.Changed {
				c.Changed++
			}
		}
		if f.Res.AnsibleStats != nil {
			// Later set_stats calls overwrite earlier keys (no summing).
			for k, v := range f.Res.AnsibleStats.Data {
				p.output[k] = v
			}
		}
	case "runner_on_failed":
		if f.IgnoreErrors {
			// As Ansible's recap: an ignored failure is ok, and changed
			// when its result says so.
			if !p.final {
				c.OK++
				if f.Res.Changed {
					c.Changed++
				}
			}
			return
		}
		if !p.final {
			c.Failed++
		}
		p.failures = append(p.failures, fmt.Sprintf("task %q failed on %s: %s", f.Task, f.Host, resultMessage(f)))
	case "runner_on_skipped":
		if !p.final {
			c.Skipped++
		}
	case "runner_on_unreachable":
		if !p.final {
			c.Unreachable++
		}
		p.failures = append(p.failures, fmt.Sprintf("host %s unreachable in task %q: %s", f.Host, f.Task, resultMessage(f)))
	case "playbook_on_stats":
		p.final = true
		b := p.base
		c.OK, c.Changed, c.Failed = b.OK+sum(f.OK), b.Changed+sum(f.Changed), b.Failed+sum(f.Failures)
		c.Skipped, c.Unreachable = b.Skipped+sum(f.Skipped), b.Unreachable+sum(f.Dark)
	}
}

// NextPlaybook starts the next playbook of a named job: its counts add to
// those of the playbooks before.
func (p *Progress) NextPlaybook() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base, p.final = p.counts, false
}

// observeText keeps Ansible's own error lines ("ERROR! ...") and what follows
// them, for a failure that happens outside any task: up to 8 lines, or up to
// 16 to reach the "^ here" under a quoted offending line. Lines keep their
// indentation, so the marker points where Ansible pointed.
func (p *Progress) observeText(s string) {
	s = StripANSI(s)
	t := strings.TrimSpace(s)
	if t == "" {
		return
	}
	line := strings.TrimRight(s, " \t\r\n")
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.errLines)
	if strings.HasPrefix(t, "ERROR!") || (n > 0 && (n < 8 || p.pointing && n < 16)) {
		p.errLines = append(p.errLines, line)
		switch {
		case strings.HasPrefix(t, "The offending line appears to be:"):
			p.pointing = true
		case strings.HasSuffix(t, "^ here"):
			p.pointing = false
		}
	}
	if len(p.lastText) == 5 {
		p.lastText = p.lastText[1:]
	}
	p.lastText = append(p.lastText, line)
}

func resultMessage(f eventFields) string {
	switch m := f.Res.Msg.(type) {
	case string:
		if m != "" {
			if f.Res.Stderr != "" && m == "non-zero return code" {
				return m + ": " + strings.TrimSpace(f.Res.Stderr)
			}
			return m
		}
	case nil:
	default:
		b, _ := json.Marshal(m)
		return string(b)
	}
	if f.Res.Stderr != "" {
		return strings.TrimSpace(f.Res.Stderr)
	}
	return "no message"
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Snapshot returns the counts and a copy of the output, and whether anything
// changed since the last Snapshot.
func (p *Progress) Snapshot() (schemas.Counts, map[string]any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]any, len(p.output))
	for k, v := range p.output {
		out[k] = v
	}
	ch := p.changed
	p.changed = false
	return p.counts, out, ch
}

// FailureReason describes why the run failed: the failing tasks with their
// messages, else Ansible's own error text, else the last lines of output
// (a crash, a missing executable), else "".
func (p *Progress) FailureReason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case len(p.failures) == 1:
		return p.failures[0]
	case len(p.failures) > 1:
		return fmt.Sprintf("%s (and %d more failures)", p.failures[0], len(p.failures)-1)
	case len(p.errLines) > 0:
		return strings.Join(p.errLines, "\n")
	case len(p.lastText) > 0:
		return strings.Join(p.lastText, "\n")
	}
	return ""
}
