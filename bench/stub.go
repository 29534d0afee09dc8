//go:build !linux

package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
)

// Measurements are the names -only takes, in the order they run.
var Measurements = []string{"playbook", "loop", "dispatch", "throughput", "memory"}

// Options configure a run of the suite; see the Linux build.
type Options struct {
	Root   string
	Bin    string
	Rounds int
	Quick  bool
	Only   []string
	Log    *slog.Logger
}

// Run says the suite needs Linux: it reads /proc for CPU and memory.
func Run(context.Context, Options, io.Writer) error {
	return errors.New("the benchmark suite runs on Linux only (it reads /proc)")
}
