//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// Suite is one run: its temp directory, the binary, the processes it
// started and the rows it measured.
type Suite struct {
	opts  Options
	log   *slog.Logger
	tmp   string
	bin   string
	pbdir string
	procs []*proc
	rows  []Row
	// standIn exits 0 at once: ansible-playbook's stand-in when the
	// figure is the worker's own cost.
	standIn string
	// warmRSS is the warm process's RSS after the one-task rounds.
	warmRSS int64
}

// Run runs the selected measurements and writes the table to out. It
// stops every process it started and removes its temp directory, also
// when a measurement fails.
func Run(ctx context.Context, opts Options, out io.Writer) (err error) {
	for _, name := range opts.Only {
		if !slices.Contains(Measurements, name) {
			return fmt.Errorf("unknown measurement %q (have %v)", name, Measurements)
		}
	}
	// Commands run in other directories: relative paths would move.
	if opts.Root, err = filepath.Abs(opts.Root); err != nil {
		return err
	}
	if opts.Bin != "" {
		if opts.Bin, err = filepath.Abs(opts.Bin); err != nil {
			return err
		}
	}
	s := &Suite{opts: opts, log: opts.Log, pbdir: filepath.Join(opts.Root, "examples", "playbooks")}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.tmp, err = os.MkdirTemp("", "ansible-worker-bench-"); err != nil {
		return err
	}
	defer s.cleanup()
	if err := s.setup(ctx); err != nil {
		return err
	}
	start := time.Now()
	for _, m := range s.selected() {
		s.log.Info("measuring", "measurement", m.name)
		if err := m.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return s.printTable(ctx, out, time.Since(start))
}

// measurement is one of the five, by name.
type measurement struct {
	name string
	run  func(context.Context) error
}

// selected lists the measurements -only asked for, in the suite's order.
func (s *Suite) selected() []measurement {
	all := []measurement{
		{"playbook", s.measurePlaybook}, {"loop", s.measureLoop}, {"dispatch", s.measureDispatch},
		{"throughput", s.measureThroughput}, {"memory", s.measureMemory},
	}
	var out []measurement
	for _, m := range all {
		if len(s.opts.Only) == 0 || slices.Contains(s.opts.Only, m.name) {
			out = append(out, m)
		}
	}
	return out
}

// setup builds the binary (unless given) and writes the stand-in.
func (s *Suite) setup(ctx context.Context) error {
	s.bin = s.opts.Bin
	if s.bin == "" {
		s.bin = filepath.Join(s.tmp, "ansible-worker")
		s.log.Info("building ansible-worker")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "./cmd/ansible-worker")
		cmd.Dir, cmd.Stderr = s.opts.Root, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build ansible-worker: %w", err)
		}
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return fmt.Errorf("ansible-playbook: %w (scripts/deps.sh run)", err)
	}
	s.standIn = "/bin/true"
	return nil
}

// cleanup stops what the suite started, newest first, and removes the
// temp directory.
func (s *Suite) cleanup() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	if err := os.RemoveAll(s.tmp); err != nil {
		s.log.Warn("temp directory not removed", "dir", s.tmp, "err", err)
	}
}

// rounds is -rounds, at least 1 (2 at most with -quick).
func (s *Suite) rounds() int {
	r := max(1, s.opts.Rounds)
	if s.opts.Quick {
		r = min(r, 2)
	}
	return r
}

// count is full, or quick with -quick.
func (s *Suite) count(full, quick int) int {
	if s.opts.Quick {
		return quick
	}
	return full
}
