package client

import "errors"

var (
	// ErrInvalid is wrapped by errors about a bad task request, task id or
	// group name. Nothing was sent.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound is wrapped when a task has no status in the group.
	ErrNotFound = errors.New("no such task")
	// ErrTaskExists is wrapped when a submission's task id is already in use
	// in the group, or was submitted before.
	ErrTaskExists = errors.New("task id in use")
	// ErrNotProvisioned is wrapped when the streams and buckets are missing
	// and cannot be created (no JetStream, no permission, no storage).
	ErrNotProvisioned = errors.New("streams and buckets not provisioned")
)

// kindError gives err one of the sentinel errors as its kind without
// changing its message.
type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

func withKind(kind, err error) error { return &kindError{kind: kind, err: err} }
