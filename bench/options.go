package bench

import "log/slog"

// Measurements are the names -only takes, in the order they run.
var Measurements = []string{"playbook", "loop", "dispatch", "throughput", "memory"}

// Options configure a run of the suite.
type Options struct {
	// Root is the repository root (examples/playbooks, ./cmd/ansible-worker).
	Root string
	// Bin is a prebuilt ansible-worker binary; "" builds one.
	Bin string
	// Rounds is how many measured rounds each comparison runs after its
	// warm-up round.
	Rounds int
	// Quick shrinks the task counts for a smoke run.
	Quick bool
	// Only selects measurements by name (Measurements); empty runs all.
	Only []string
	// Log receives the progress lines.
	Log *slog.Logger
}
