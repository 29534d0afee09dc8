package schemas

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is the life-cycle state of a task in TaskStatus.
type State string

// Task states. Success, Failed, Cancelled and Timeout are final.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSuccess   State = "success"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
	StateTimeout   State = "timeout"
)

// Final reports whether no further change follows this state.
func (s State) Final() bool {
	switch s {
	case StateSuccess, StateFailed, StateCancelled, StateTimeout:
		return true
	}
	return false
}

// RunnerStatus returns the ansible-runner status word for a final state.
func (s State) RunnerStatus() string {
	switch s {
	case StateSuccess:
		return RunnerSuccessful
	case StateCancelled:
		return RunnerCanceled
	case StateTimeout:
		return RunnerTimeout
	case StateRunning:
		return RunnerRunning
	case StateQueued:
		return RunnerStarting
	}
	return RunnerFailed
}

// TimeFormat is the timestamp layout of TaskStatus: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Time is a timestamp that marshals in TimeFormat.
type Time struct{ time.Time }

// NewTime returns t as a Time in UTC, truncated to milliseconds.
func NewTime(t time.Time) *Time { return &Time{t.UTC().Truncate(time.Millisecond)} }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimeFormat) + `"`), nil
}

// UnmarshalJSON accepts any RFC 3339 timestamp.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp must be a string: %w", err)
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", s, err)
	}
	t.Time = p
	return nil
}

// TaskStatus is the latest state of a task, kept in the KV bucket and the
// retained MQTT status topic.
type TaskStatus struct {
	TaskID           string         `json:"task_id"`
	State            State          `json:"state"`
	CreatedAt        *Time          `json:"created_at"`
	StartedAt        *Time          `json:"started_at"`
	CompletedAt      *Time          `json:"completed_at"`
	DurationSeconds  float64        `json:"duration_seconds"`
	TasksTotal       int            `json:"tasks_total"`
	TasksOK          int            `json:"tasks_ok"`
	TasksChanged     int            `json:"tasks_changed"`
	TasksFailed      int            `json:"tasks_failed"`
	TasksSkipped     int            `json:"tasks_skipped"`
	TasksUnreachable int            `json:"tasks_unreachable"`
	ReturnCode       *int           `json:"return_code"`
	ErrorMessage     *string        `json:"error_message"`
	Output           map[string]any `json:"output"`
	Group            string         `json:"group"`
	Worker           string         `json:"worker"`
	Attempt          int            `json:"attempt"`
}

// Counts are the PLAY RECAP figures of a run, summed over hosts.
type Counts struct {
	Total, OK, Changed, Failed, Skipped, Unreachable int
}

// SetCounts copies c into the status.
func (s *TaskStatus) SetCounts(c Counts) {
	s.TasksTotal, s.TasksOK, s.TasksChanged = c.Total, c.OK, c.Changed
	s.TasksFailed, s.TasksSkipped, s.TasksUnreachable = c.Failed, c.Skipped, c.Unreachable
}

// SetError sets error_message; an empty string clears it.
func (s *TaskStatus) SetError(msg string) {
	if msg == "" {
		s.ErrorMessage = nil
		return
	}
	s.ErrorMessage = &msg
}

// Err returns error_message or "".
func (s *TaskStatus) Err() string {
	if s.ErrorMessage == nil {
		return ""
	}
	return *s.ErrorMessage
}

// ParseTaskStatus decodes a TaskStatus.
func ParseTaskStatus(b []byte) (TaskStatus, error) {
	var s TaskStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode task status: %w", err)
	}
	return s, nil
}
