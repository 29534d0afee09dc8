//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// workerSpec is what differs between the workers the measurements start.
type workerSpec struct {
	// name names the worker's directory and its progress lines.
	name string
	// concurrency is worker.concurrency (1 when 0).
	concurrency int
	// ansiblePlaybook is worker.ansible_playbook; "" runs the real one.
	ansiblePlaybook string
	// server is an external NATS URL; "" starts the embedded server.
	server string
	// cold turns warm starts off (worker.warm_start: false).
	cold bool
}

// proc is a process the suite started and must stop.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string // the file its stderr goes to
}

// workerProc is a running `ansible-worker run`.
type workerProc struct {
	proc
	url string // where its NATS server listens
}

// startWorker starts a worker of spec with a fresh store and data
// directory and returns once it said READY=1. A port taken between
// freePort and the server's bind is retried.
// startDialed starts a worker and connects to its server; stop ends both.
func (s *Suite) startDialed(ctx context.Context, spec workerSpec) (w *workerProc, c *conn, stop func(), err error) {
	if w, err = s.startWorker(ctx, spec); err != nil {
		return nil, nil, nil, err
	}
	if c, err = dial(ctx, w.url); err != nil {
		w.stop()
		return nil, nil, nil, err
	}
	return w, c, func() { c.nc.Close(); w.stop() }, nil
}

func (s *Suite) startWorker(ctx context.Context, spec workerSpec) (*workerProc, error) {
	var err error
	for range 3 {
		var w *workerProc
		if w, err = s.tryWorker(ctx, spec); err == nil {
			s.log.Info("worker started", "worker", spec.name, "pid", w.cmd.Process.Pid, "nats", w.url)
			return w, nil
		}
		s.log.Warn("worker did not start; retrying", "worker", spec.name, "err", err)
	}
	return nil, err
}

// tryWorker writes the configuration and starts one worker.
func (s *Suite) tryWorker(ctx context.Context, spec workerSpec) (*workerProc, error) {
	dir, err := os.MkdirTemp(s.tmp, spec.name+"-")
	if err != nil {
		return nil, err
	}
	url := spec.server
	natsCfg := fmt.Sprintf("nats:\n  servers: [%q]\n", spec.server)
	if spec.server == "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		url = fmt.Sprintf("nats://127.0.0.1:%d", port)
		natsCfg = fmt.Sprintf("nats:\n  embedded:\n    enabled: true\n    listen: 127.0.0.1:%d\n    store_dir: %s\n",
			port, filepath.Join(dir, "store"))
	}
	cfg := fmt.Sprintf("log_level: INFO\nworker:\n  playbook_directory: %s\n  data_dir: %s\n"+
		"  concurrency: %d\n  max_queue_size: 0\n  shutdown_grace: 2\n  kill_grace: 1\n",
		s.pbdir, filepath.Join(dir, "data"), max(1, spec.concurrency))
	if spec.ansiblePlaybook != "" {
		cfg += fmt.Sprintf("  ansible_playbook: %s\n", spec.ansiblePlaybook)
	}
	if spec.cold {
		cfg += "  warm_start: false\n"
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg+natsCfg), 0o600); err != nil {
		return nil, err
	}
	p, err := s.startNotified(ctx, filepath.Join(dir, "worker.log"), s.bin, "run", "-c", path)
	if err != nil {
		return nil, err
	}
	return &workerProc{proc: *p, url: url}, nil
}

// startNotified starts argv with NOTIFY_SOCKET set and waits for READY=1,
// the signal `ansible-worker run` sends once it listens and pulls.
func (s *Suite) startNotified(ctx context.Context, logPath string, argv ...string) (*proc, error) {
	sockDir, err := os.MkdirTemp("", "awb-") // short: socket paths are bounded
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	p, err := s.start(logPath, append(cleanEnv(), "NOTIFY_SOCKET="+sock), argv...)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, conn, p); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w\n%s", err, p.logTail())
	}
	return p, nil
}

// waitReady reads the notify socket until READY=1, the process's exit or
// a 60 s deadline.
func waitReady(ctx context.Context, conn *net.UnixConn, p *proc) error {
	deadline := time.Now().Add(60 * time.Second)
	buf := make([]byte, 256)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-p.done:
			return errors.New("exited before it was ready")
		default:
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil && strings.Contains(string(buf[:n]), "READY=1") {
			return nil
		}
	}
	return errors.New("not ready after 60 s")
}

// start runs argv in the background with stderr (and stdout) to logPath,
// and registers it to be stopped when the suite ends.
func (s *Suite) start(logPath string, env []string, argv ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// stop sends SIGTERM and waits for the exit; SIGKILL after a minute.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logTail is the end of the process's log, for an error message.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// pid is the process id, for /proc.
func (p *proc) pid() int { return p.cmd.Process.Pid }
