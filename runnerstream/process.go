package runnerstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ProcessOptions configure Process.
type ProcessOptions struct {
	// Ident names the artifact directory, <dir>/artifacts/<Ident>; without
	// it the artifacts go to <dir>/artifacts itself, as ansible-runner does.
	Ident string
	// Stdout receives the playbook output of every event; nil prints none.
	Stdout io.Writer
	// OnEvent and OnStatus, when set, see every event and status line.
	OnEvent  func(raw json.RawMessage)
	OnStatus func(status string, raw json.RawMessage)
	// Limits bound what the stream may hold; zero means DefaultLimits.
	Limits Limits
}

// Result is how a processed job ended.
type Result struct {
	// Status is the last status of the stream: successful, failed,
	// timeout, canceled, or error (the worker could not run the job, or
	// the stream broke).
	Status string
	// Explanation is the job_explanation of an error status.
	Explanation string
	// RC is the playbook's return code from the artifacts; -1 when unknown.
	RC int
	// ArtifactDir is where the artifacts were written.
	ArtifactDir string
}

// OK reports whether the job succeeded.
func (r Result) OK() bool { return r.Status == "successful" }

// Process reads a worker's result stream from in and does what ansible-
// runner's process stage does: it writes every event to
// <artifact dir>/job_events/<counter>-<uuid>.json, prints its output,
// extracts the artifacts (rc, status, stdout, command, fact_cache, ...) into
// the artifact dir, and returns how the job ended. A stream that breaks
// ends with the error status, as ansible-runner reports it.
func Process(ctx context.Context, in io.Reader, dir string, o ProcessOptions) (Result, error) {
	art := filepath.Join(dir, "artifacts")
	if o.Ident != "" {
		art = filepath.Join(art, o.Ident)
	}
	res := Result{RC: -1, ArtifactDir: art}
	if err := os.MkdirAll(filepath.Join(art, "job_events"), 0o700); err != nil {
		return res, fmt.Errorf("artifact directory: %w", err)
	}
	p := &processor{o: o, art: art, res: &res, r: NewReader(in, o.Limits)}
	for ctx.Err() == nil {
		done, err := p.next()
		if err != nil {
			res.Status, res.Explanation = "error", explanation(err)
			p.status("error", nil)
			return res, nil
		}
		if done {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.RC = readRC(art)
	return res, nil
}

// processor is one Process run.
type processor struct {
	o   ProcessOptions
	art string
	res *Result
	r   *Reader
}

// next handles one message; true at the end of the stream.
func (p *processor) next() (bool, error) {
	m, err := p.r.Next()
	if errors.Is(err, io.EOF) {
		return false, &streamError{parse: true, err: errors.New("unexpected EOF before the end of the stream")}
	}
	if err != nil {
		return false, &streamError{parse: true, err: err}
	}
	switch m.Kind {
	case KindEOF:
		return true, nil
	case KindZip:
		if err := p.r.Unzip(p.art); err != nil {
			return false, &streamError{err: err}
		}
	case KindStatus:
		var s struct {
			Status      string `json:"status"`
			Explanation string `json:"job_explanation"`
		}
		_ = json.Unmarshal(m.Raw, &s)
		p.res.Status, p.res.Explanation = s.Status, s.Explanation
		p.status(s.Status, m.Raw)
	case KindEvent:
		return false, p.event(m.Raw)
	}
	return false, nil
}

func (p *processor) status(s string, raw json.RawMessage) {
	if p.o.OnStatus != nil {
		p.o.OnStatus(s, raw)
	}
}

// event writes and prints one event; one without counter or uuid is
// dropped, as ansible-runner drops it.
func (p *processor) event(raw json.RawMessage) error {
	ev, ok, err := readEventKeys(raw)
	if !ok {
		return err
	}
	if p.o.Stdout != nil && ev.Stdout != "" {
		fmt.Fprintln(p.o.Stdout, ev.Stdout)
	}
	if p.o.OnEvent != nil {
		p.o.OnEvent(raw)
	}
	return writeFileAtomic(ev.fileName(p.art), raw, 0o600)
}

// streamError is a result stream that cannot be read further.
type streamError struct {
	parse bool // a line, not the artifacts
	err   error
}

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// explanation is the job_explanation of a broken stream, in ansible-
// runner's words where it has some.
func explanation(err error) string {
	var se *streamError
	if errors.As(err, &se) && !se.parse {
		return "Failed to extract the artifacts of the job. Error: " + se.err.Error()
	}
	return "Failed to JSON parse a line from worker stream. Error: " + err.Error()
}

// writeFileAtomic writes data to name through a temporary file, so a
// reader never sees half of it.
func writeFileAtomic(name string, data []byte, mode os.FileMode) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(name), err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(name), err)
	}
	return nil
}

// readRC reads the rc artifact; -1 when there is none.
func readRC(art string) int {
	b, err := os.ReadFile(filepath.Join(art, "rc"))
	if err != nil {
		return -1
	}
	var rc int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &rc); err != nil {
		return -1
	}
	return rc
}
