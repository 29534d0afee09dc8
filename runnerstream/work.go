package runnerstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// RunFunc runs a job's ansible-playbook and passes each event to onEvent,
// in order, as one JSON object. It returns the playbook's return code and
// the final ansible-runner status: successful, failed, timeout or canceled.
type RunFunc func(ctx context.Context, job *Job, onEvent func(event []byte)) (rc int, status string, err error)

// WorkOptions configure Work.
type WorkOptions struct {
	// PrivateDataDir is where the job is extracted; "" means a temporary
	// directory, removed afterwards.
	PrivateDataDir string
	// Delete removes PrivateDataDir before and after the run.
	Delete bool
	// Keepalive, when positive, sends a keepalive line after that long
	// without output, for connections that drop idle streams.
	Keepalive time.Duration
	// Job holds the rules the job must follow (see JobOptions).
	Job JobOptions
	// Run runs the playbook.
	Run RunFunc
	// Limits bound what the incoming stream may hold; zero means
	// DefaultLimits.
	Limits Limits
}

// Work does what ansible-runner's worker stage does: it reads a transmit
// stream from in, runs the job, and writes the result stream to out:
// statuses, events, the artifacts, the end. A stream or job it refuses ends
// with an error status line that says why, as ansible-runner's does. It
// returns the final status and the playbook's return code (-1 when it did
// not run); the error is for out failing or ctx ending.
func Work(ctx context.Context, in io.Reader, out io.Writer, o WorkOptions) (string, int, error) {
	w := &lockedWriter{w: NewWriter(out)}
	stop := w.keepalive(o.Keepalive)
	defer stop()
	dir, cleanup, err := workDir(o)
	if err != nil {
		return w.fail("Failed to create the private data directory on worker.", err)
	}
	defer cleanup()
	kw, err := receive(NewReader(in, o.Limits), dir)
	if err != nil {
		return w.fail(refusal(err), err)
	}
	// `worker cleanup` leaves a directory alone while this process lives.
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return w.fail("Failed to write the pid file on worker.", err)
	}
	pdd, err := LoadPrivateDataDir(dir)
	if err == nil {
		var job *Job
		if job, err = NewJob(*kw, pdd, o.Job); err == nil {
			return runJob(ctx, w, job, o.Run)
		}
	}
	return w.fail("The job was refused: "+err.Error(), nil)
}

// workDir returns the directory to extract the job into and what removes
// it afterwards.
func workDir(o WorkOptions) (string, func(), error) {
	if o.PrivateDataDir == "" {
		dir, err := os.MkdirTemp("", "ansible-worker-job-")
		return dir, func() { os.RemoveAll(dir) }, err
	}
	if o.Delete {
		if err := os.RemoveAll(o.PrivateDataDir); err != nil {
			return "", nil, err
		}
	}
	if err := os.MkdirAll(o.PrivateDataDir, 0o700); err != nil {
		return "", nil, err
	}
	if o.Delete {
		return o.PrivateDataDir, func() { os.RemoveAll(o.PrivateDataDir) }, nil
	}
	return o.PrivateDataDir, func() {}, nil
}

// receive reads the transmit stream: the kwargs, the private data
// directory, the end.
func receive(r *Reader, dir string) (*Kwargs, error) {
	var kw *Kwargs
	for {
		m, err := r.Next()
		if err != nil {
			return nil, &streamError{parse: true, err: err}
		}
		switch m.Kind {
		case KindKwargs:
			var line struct {
				Kwargs Kwargs `json:"kwargs"`
			}
			if err := json.Unmarshal(m.Raw, &line); err != nil {
				return nil, &streamError{parse: true, err: err}
			}
			kw = &line.Kwargs
		case KindZip:
			if err := r.Unzip(dir); err != nil {
				return nil, &streamError{err: err}
			}
		case KindEOF:
			if kw == nil {
				return nil, &streamError{parse: true, err: errors.New("the stream ended without its kwargs line")}
			}
			return kw, nil
		}
	}
}

// refusal is the job_explanation of a transmit stream that cannot be read,
// in ansible-runner's words.
func refusal(err error) string {
	var se *streamError
	if errors.As(err, &se) && !se.parse {
		return "Failed to extract private data directory on worker."
	}
	return "Failed to JSON parse a line from transmit stream."
}

// runJob runs an accepted job and writes its statuses, events, artifacts
// and end.
func runJob(ctx context.Context, w *lockedWriter, job *Job, run RunFunc) (string, int, error) {
	art, err := newArtifactWriter(job, false)
	if err != nil {
		return w.fail("Failed to create the artifact directory on worker.", err)
	}
	cmd := append([]string{"ansible-playbook"}, job.Args...)
	if err := w.json(map[string]any{"status": "starting", "runner_ident": job.Ident, "command": cmd, "cwd": job.ProjectDir}); err != nil {
		return "", -1, err
	}
	if err := w.json(map[string]any{"status": "running", "runner_ident": job.Ident}); err != nil {
		return "", -1, err
	}
	var werr error
	rc, status, err := run(ctx, job, func(ev []byte) {
		art.event(ev)
		if err := w.raw(ev); err != nil && werr == nil {
			werr = err
		}
	})
	if err != nil {
		return w.fail("The job could not run: "+err.Error(), nil)
	}
	if werr != nil {
		return "", rc, werr
	}
	if err := w.json(map[string]any{"status": status, "runner_ident": job.Ident}); err != nil {
		return "", rc, err
	}
	if err := art.finish(cmd, rc, status); err != nil {
		return w.fail("Failed to write the artifacts on worker.", err)
	}
	return status, rc, w.end(job.ArtifactDir)
}

// lockedWriter serialises the writes of the run and of the keepalive.
type lockedWriter struct {
	mu   sync.Mutex
	w    *Writer
	last time.Time
	done bool
}

func (l *lockedWriter) json(v any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = time.Now()
	return l.w.JSON(v)
}

func (l *lockedWriter) raw(line []byte) error {
	var v json.RawMessage = line
	return l.json(v)
}

// end sends the artifacts and the end of the stream.
func (l *lockedWriter) end(artifacts string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	if err := l.w.ZipDir(artifacts, ZipOptions{}); err != nil {
		return fmt.Errorf("send the artifacts: %w", err)
	}
	return l.w.EOF()
}

// fail ends the stream with an error status line, as ansible-runner's
// worker does; cause, when not nil, goes in result_traceback.
func (l *lockedWriter) fail(explanation string, cause error) (string, int, error) {
	line := map[string]any{"status": "error", "job_explanation": explanation}
	if cause != nil {
		line["result_traceback"] = cause.Error()
	}
	if err := l.json(line); err != nil {
		return "error", -1, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	return "error", -1, l.w.EOF()
}

// keepalive sends {"event": "keepalive"} after every idle period d, until
// the returned stop is called or the stream ended.
func (l *lockedWriter) keepalive(d time.Duration) (stop func()) {
	if d <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	go func() {
		t := time.NewTicker(d / 4)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				l.mu.Lock()
				if !l.done && time.Since(l.last) >= d {
					l.last = time.Now()
					_ = l.w.JSON(map[string]any{"event": "keepalive", "counter": 0, "uuid": 0})
				}
				l.mu.Unlock()
			}
		}
	}()
	return func() { close(quit) }
}
