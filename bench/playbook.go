//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The sides of a playbook comparison, in the order of their results.
const (
	sideRaw = iota
	sideRunner
	sideWorker
	sideWarm
)

// side is one way of running a playbook.
type side struct {
	name string
	run  func(ctx context.Context) (sample, error)
}

// measurePlaybook: hello.yml, wall time, three ways.
func (s *Suite) measurePlaybook(ctx context.Context) error {
	res, err := s.comparePlaybook(ctx, "hello.yml")
	if err != nil {
		return err
	}
	s.rows = append(s.rows, wallRow("one-task playbook, wall (median)", res),
		Row{Figure: "warm process RSS (Python with Ansible imported), after the rounds", Warm: fmtMiB(s.warmRSS)})
	return nil
}

// measureLoop: loop.yml (1000 items), wall and CPU time, three ways.
func (s *Suite) measureLoop(ctx context.Context) error {
	res, err := s.comparePlaybook(ctx, "loop.yml")
	if err != nil {
		return err
	}
	cpu := func(xs []sample) []float64 {
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = x.cpu.Seconds()
		}
		return out
	}
	client := make([]float64, len(res[sideWorker]))
	for i, x := range res[sideWorker] {
		client[i] = x.clientCPU.Seconds()
	}
	s.rows = append(s.rows, wallRow("1000-item loop, wall (median)", res),
		compareRow("1000-item loop, CPU (median; worker: +Ansible+NATS)",
			cpu(res[sideRaw]), cpu(res[sideRunner]), cpu(res[sideWorker]), cpu(res[sideWarm]), fmtSeconds),
		Row{Figure: "1000-item loop, submit client CPU (median)", Raw: "—", Runner: "—",
			Worker: fmtSeconds(Median(client)), Ratio: "—", Warm: "—"})
	return nil
}

// comparePlaybook starts a worker with warm starts off and one with them
// on, and times playbook through raw ansible-playbook, ansible-runner and
// both workers, one warm-up round and then the measured rounds, each round
// in a rotated order.
func (s *Suite) comparePlaybook(ctx context.Context, playbook string) ([][]sample, error) {
	cold, err := s.startWorker(ctx, workerSpec{name: "cold-" + playbook, cold: true})
	if err != nil {
		return nil, err
	}
	defer cold.stop()
	warm, err := s.startWorker(ctx, workerSpec{name: "warm-" + playbook})
	if err != nil {
		return nil, err
	}
	defer warm.stop()
	warmPID, err := warm.warmProcess(ctx)
	if err != nil {
		return nil, err
	}
	pdd, err := s.privateDataDir(playbook)
	if err != nil {
		return nil, err
	}
	sides := []side{
		sideRaw:    {"ansible-playbook", s.rawSide(playbook)},
		sideRunner: {"ansible-runner", s.runnerSide(pdd, playbook)},
		sideWorker: {"worker (cold)", s.workerSide(cold, playbook)},
		sideWarm:   {"worker (warm)", s.workerSide(warm, playbook)},
	}
	res, err := s.compare(ctx, playbook, sides)
	if err == nil && s.warmRSS == 0 {
		s.warmRSS, err = procRSS(warmPID)
	}
	return res, err
}

// compare runs the sides in rotated orders: round 0 is the warm-up (page
// cache, bytecode caches, the worker's first task) and is not kept.
func (s *Suite) compare(ctx context.Context, what string, sides []side) ([][]sample, error) {
	res := make([][]sample, len(sides))
	for r := range s.rounds() + 1 {
		for _, i := range Order(r, len(sides)) {
			smp, err := sides[i].run(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sides[i].name, err)
			}
			if r > 0 {
				res[i] = append(res[i], smp)
			}
			s.log.Info("run", "playbook", what, "round", r, "warmup", r == 0, "side", sides[i].name,
				"wall", smp.wall.Round(time.Millisecond), "cpu", smp.cpu)
		}
	}
	return res, nil
}

// rawSide runs ansible-playbook in the playbook directory, as a user would.
func (s *Suite) rawSide(playbook string) func(context.Context) (sample, error) {
	return func(ctx context.Context) (sample, error) {
		return runTimed(ctx, s.pbdir, cleanEnv(), "ansible-playbook", "-i", "inventory/hosts", playbook)
	}
}

// runnerSide runs `ansible-runner run` on a private data directory with a
// fresh ident each time, so no run finds another's artifacts.
func (s *Suite) runnerSide(pdd, playbook string) func(context.Context) (sample, error) {
	n := 0
	return func(ctx context.Context) (sample, error) {
		n++
		return runTimed(ctx, pdd, cleanEnv(), "ansible-runner", "run", pdd, "-p", playbook,
			"--ident", fmt.Sprintf("bench-%d", n))
	}
}

// workerSide runs `ansible-worker submit --wait --quiet`, a client started
// per run as a user would. Its CPU figure is the worker's process tree's
// (embedded NATS server, supervisors, warm process and Ansible included)
// over the run; the client's own CPU is kept apart.
func (s *Suite) workerSide(w *workerProc, playbook string) func(context.Context) (sample, error) {
	return func(ctx context.Context) (sample, error) {
		before, err := treeCPU(w.pid())
		if err != nil {
			return sample{}, err
		}
		smp, err := runTimed(ctx, s.pbdir, cleanEnv(), s.bin, "submit", "-s", w.url, "--wait", "--quiet",
			"-p", playbook, "-i", "inventory/hosts")
		if err != nil {
			return sample{}, fmt.Errorf("%w\nworker log:\n%s", err, w.logTail())
		}
		after, err := treeCPU(w.pid())
		if err != nil {
			return sample{}, err
		}
		smp.clientCPU, smp.cpu = smp.cpu, after-before
		return smp, nil
	}
}

// privateDataDir prepares ansible-runner's input: project/PLAYBOOK and
// inventory/hosts, copied from examples/playbooks.
func (s *Suite) privateDataDir(playbook string) (string, error) {
	dir, err := os.MkdirTemp(s.tmp, "runner-")
	if err != nil {
		return "", err
	}
	for src, dst := range map[string]string{playbook: "project/" + playbook, "inventory/hosts": "inventory/hosts"} {
		b, err := os.ReadFile(filepath.Join(s.pbdir, src))
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(dst)), 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// warmProcess waits until the worker's warm process is ready (its log
// says so) and returns its pid.
func (w *workerProc) warmProcess(ctx context.Context) (int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		log, _ := os.ReadFile(w.log)
		if i := strings.Index(string(log), `msg="warm process ready"`); i >= 0 {
			line, _, _ := strings.Cut(string(log[i:]), "\n")
			if _, after, ok := strings.Cut(line, " pid="); ok {
				return strconv.Atoi(strings.Fields(after)[0])
			}
		}
		time.Sleep(50 * time.Millisecond) // polled until the deadline
	}
	return 0, fmt.Errorf("the worker's warm process is not ready\n%s", w.logTail())
}

// wallRow is the wall-time row of a comparison.
func wallRow(figure string, res [][]sample) Row {
	wall := func(xs []sample) []float64 {
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = x.wall.Seconds()
		}
		return out
	}
	return compareRow(figure, wall(res[sideRaw]), wall(res[sideRunner]), wall(res[sideWorker]), wall(res[sideWarm]), fmtSeconds)
}
