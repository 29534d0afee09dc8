package schemas

import "encoding/json"

// ansible-runner status words, as published on pub.ansible.runner.<sid>.<id>.status.
const (
	RunnerStarting   = "starting"
	RunnerRunning    = "running"
	RunnerSuccessful = "successful"
	RunnerFailed     = "failed"
	RunnerTimeout    = "timeout"
	RunnerCanceled   = "canceled"
)

// RunnerFinal reports whether an ansible-runner status word ends a run.
func RunnerFinal(s string) bool {
	switch s {
	case RunnerSuccessful, RunnerFailed, RunnerTimeout, RunnerCanceled:
		return true
	}
	return false
}

// RunnerStatus is an ansible-runner status message. Unlike ansible-runner's
// it never carries the process environment.
type RunnerStatus struct {
	Status      string   `json:"status"`
	RunnerIdent string   `json:"runner_ident"`
	Command     []string `json:"command,omitempty"`
	Cwd         string   `json:"cwd,omitempty"`
}

// Event is an ansible-runner job event. Keys are in ansible-runner's order;
// EventData is kept as the raw JSON the callback plugin produced. As in
// ansible-runner, a verbose event made of a line Ansible printed outside the
// callback plugin (before it was loaded, for instance) has neither pid nor
// event_data; every other event has both. Created is naive UTC with
// microseconds ("2026-12-01T21:57:17.546727"), as ansible-runner 2.3.1
// writes it.
type Event struct {
	UUID        string          `json:"uuid"`
	Counter     int             `json:"counter"`
	Stdout      string          `json:"stdout"`
	StartLine   int             `json:"start_line"`
	EndLine     int             `json:"end_line"`
	RunnerIdent string          `json:"runner_ident"`
	Event       string          `json:"event"`
	PID         int             `json:"pid,omitempty"`
	Created     string          `json:"created"`
	ParentUUID  string          `json:"parent_uuid,omitempty"`
	Verbosity   *int            `json:"verbosity,omitempty"`
	EventData   json.RawMessage `json:"event_data,omitempty"`
}
