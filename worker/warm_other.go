//go:build !linux

package worker

import (
	"errors"
	"log/slog"
	"os"
)

// Warm is the warm start of Linux (see warm.go); elsewhere every task
// starts cold.
type Warm struct{}

// NewWarm reports that warm starts need Linux (a child subreaper and
// /proc, which the warm process's task supervisors rely on).
func NewWarm(ansiblePlaybook, dataDir string, log *slog.Logger) (*Warm, error) {
	return nil, errors.New("warm starts need Linux")
}

// Prime does nothing here.
func (wm *Warm) Prime(p *Process) {}

// Invalidate does nothing here.
func (wm *Warm) Invalidate(why string) {}

// Close does nothing here.
func (wm *Warm) Close() {}

func (wm *Warm) start(p *Process, env []string, out, events *os.File) (*started, bool) {
	return nil, false
}
