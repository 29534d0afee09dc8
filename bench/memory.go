//go:build linux

package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// measureMemory: the worker's RSS idle after start, and with N tasks
// waiting behind one that sleeps. The server is an external nats-server
// so that its memory is not the worker's.
func (s *Suite) measureMemory(ctx context.Context) error {
	url, err := s.startNATSServer(ctx)
	if err != nil {
		return err
	}
	sleeper := filepath.Join(s.tmp, "sleep-playbook")
	if err := os.WriteFile(sleeper, []byte("#!/bin/sh\nexec sleep 600\n"), 0o700); err != nil {
		return err
	}
	w, err := s.startWorker(ctx, workerSpec{name: "memory", ansiblePlaybook: sleeper, server: url})
	if err != nil {
		return err
	}
	defer w.stop()
	idle, err := procRSS(w.pid())
	if err != nil {
		return err
	}
	n := s.count(10000, 1000)
	loaded, err := s.loadQueue(ctx, w, n)
	if err != nil {
		return fmt.Errorf("%w\nworker log:\n%s", err, w.logTail())
	}
	s.rows = append(s.rows,
		Row{Figure: "worker RSS, idle after start (external nats-server)", Worker: fmtMiB(idle)},
		Row{Figure: fmt.Sprintf("worker RSS, %d tasks waiting", n), Worker: fmtMiB(loaded)})
	return nil
}

// loadQueue occupies the worker's one slot with a sleeping task, publishes
// n more and returns the worker's RSS once all n are recorded queued.
func (s *Suite) loadQueue(ctx context.Context, w *workerProc, n int) (int64, error) {
	c, err := dial(ctx, w.url)
	if err != nil {
		return 0, err
	}
	defer c.nc.Close()
	running, err := c.countStates(ctx, 1, func(st schemas.State) bool { return st == schemas.StateRunning })
	if err != nil {
		return 0, err
	}
	if err := c.publishAsync(ctx, 1, func(int) string { return "occupy" }, taskMsg); err != nil {
		return 0, err
	}
	if _, err := waitTime(ctx, running, time.Minute, "the occupying task running"); err != nil {
		return 0, err
	}
	queued, err := c.countStates(ctx, n, func(st schemas.State) bool { return st == schemas.StateQueued })
	if err != nil {
		return 0, err
	}
	if err := c.publishAsync(ctx, n, func(i int) string { return fmt.Sprintf("wait-%d", i) }, taskMsg); err != nil {
		return 0, err
	}
	if _, err := waitTime(ctx, queued, 5*time.Minute, fmt.Sprintf("%d tasks queued", n)); err != nil {
		return 0, err
	}
	return procRSS(w.pid())
}

// startNATSServer builds nats-server from the module in go.mod and starts
// it with JetStream on a free loopback port; it returns once the port
// accepts connections.
func (s *Suite) startNATSServer(ctx context.Context) (string, error) {
	bin := filepath.Join(s.tmp, "nats-server")
	s.log.Info("building nats-server")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	build.Dir, build.Stderr = s.opts.Root, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build nats-server: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := s.start(filepath.Join(s.tmp, "nats-server.log"), cleanEnv(), bin, "-js", "-a", "127.0.0.1",
		"-p", fmt.Sprint(port), "-sd", filepath.Join(s.tmp, "nats-store"))
	if err != nil {
		return "", err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return "nats://" + addr, nil
		}
		select {
		case <-p.done:
			return "", fmt.Errorf("nats-server exited:\n%s", p.logTail())
		case <-time.After(20 * time.Millisecond): // the poll interval, not a wait for the condition
		}
	}
	return "", fmt.Errorf("nats-server not listening on %s after 30 s", addr)
}
