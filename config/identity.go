package config

import (
	"os"
	"strconv"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// ID returns WorkerID, or when it is empty "<hostname>-<pid>" with every
// character outside A-Z a-z 0-9 _ - replaced by "-", so it is a valid id.
func (w WorkerConfig) ID() string {
	if w.WorkerID != "" {
		return w.WorkerID
	}
	return sanitizeID(hostname()) + "-" + strconv.Itoa(os.Getpid())
}

// SubjectID returns the {subject_id} token of the runner subjects:
// nats.subject_id (RUNNER_NATS_SUBJECT_ID), where "hostname" means this
// machine's host name with every character outside A-Z a-z 0-9 _ -
// replaced by "-", and empty means the group name.
func (c *Config) SubjectID() string {
	switch c.NATS.SubjectID {
	case "":
		return c.Worker.GroupName
	case "hostname":
		return sanitizeID(hostname())
	}
	return c.NATS.SubjectID
}

// hostname returns this machine's host name, "localhost" when it has
// none.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// sanitizeID replaces every character outside A-Z a-z 0-9 _ - by "-" and
// cuts the result to schemas.MaxIDLength.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			b[i] = '-'
		}
	}
	if len(b) > schemas.MaxIDLength {
		b = b[:schemas.MaxIDLength]
	}
	if len(b) == 0 {
		return "localhost"
	}
	return string(b)
}
