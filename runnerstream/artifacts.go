package runnerstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// artifactWriter writes the artifacts of a run as it goes, so that no
// output is held in memory: the stdout file and, when events is set, the
// job_events files ansible-runner's process stage writes.
type artifactWriter struct {
	job    *Job
	events bool
	stdout *os.File // nil when the job suppresses it
	err    error    // the first write that failed
}

func newArtifactWriter(job *Job, events bool) (*artifactWriter, error) {
	a := &artifactWriter{job: job, events: events}
	if err := os.MkdirAll(filepath.Join(job.ArtifactDir, "job_events"), 0o700); err != nil {
		return nil, fmt.Errorf("artifact directory: %w", err)
	}
	if !job.SuppressOutputFile {
		f, err := os.OpenFile(filepath.Join(job.ArtifactDir, "stdout"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("artifact directory: %w", err)
		}
		a.stdout = f
	}
	return a, nil
}

// event records one event, as it was sent.
func (a *artifactWriter) event(raw []byte) {
	if a.err != nil {
		return
	}
	ev, ok, _ := readEventKeys(raw)
	if !ok {
		return
	}
	if a.stdout != nil && ev.Stdout != "" {
		_, a.err = a.stdout.WriteString(ev.Stdout + "\n")
	}
	if a.events && a.err == nil {
		a.err = writeFileAtomic(ev.fileName(a.job.ArtifactDir), raw, 0o600)
	}
}

// finish writes the rest of what ansible-runner's worker sends back
// besides the events, and reports the first failure of the run's writes.
func (a *artifactWriter) finish(cmd []string, rc int, status string) error {
	errs := []error{a.err}
	if a.stdout != nil {
		errs = append(errs, a.stdout.Close())
	}
	command, err := json.Marshal(map[string]any{"command": cmd, "cwd": a.job.ProjectDir, "env": map[string]string{}})
	errs = append(errs, err)
	files := map[string][]byte{"rc": []byte(strconv.Itoa(rc)), "status": []byte(status), "command": command}
	if !a.job.SuppressOutputFile {
		files["stderr"] = nil
	}
	for name, data := range files {
		errs = append(errs, os.WriteFile(filepath.Join(a.job.ArtifactDir, name), data, 0o600))
	}
	errs = append(errs, os.MkdirAll(filepath.Join(a.job.ArtifactDir, "fact_cache"), 0o700))
	return errors.Join(errs...)
}

// eventKeys are what the artifacts need of an event.
type eventKeys struct {
	UUID    string `json:"uuid"`
	Counter int    `json:"counter"`
	Stdout  string `json:"stdout"`
}

// readEventKeys reads an event; ok is false for one without counter or
// uuid (or with a uuid that is not a file name), which is dropped, as
// ansible-runner drops it.
func readEventKeys(raw []byte) (ev eventKeys, ok bool, err error) {
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, false, fmt.Errorf("event: %w", err)
	}
	if ev.Counter <= 0 || ev.UUID == "" || strings.ContainsAny(ev.UUID, `/\`) || ev.UUID == "." || ev.UUID == ".." {
		return ev, false, nil
	}
	return ev, true, nil
}

// fileName is the event's file: job_events/<counter>-<uuid>.json.
func (ev eventKeys) fileName(art string) string {
	return filepath.Join(art, "job_events", fmt.Sprintf("%d-%s.json", ev.Counter, ev.UUID))
}
