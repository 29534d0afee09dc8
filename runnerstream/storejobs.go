package runnerstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/ansible-worker/ansible-worker/worker"
)

// JobStore keeps the files of a group's runner jobs: jsbridge.JobObjects
// keeps them in a JetStream Object Store.
type JobStore interface {
	// GetJob writes the zip of the private data directory task id
	// shipped to a new file at path; an error wrapping fs.ErrNotExist
	// when there is none, and one wrapping ErrTooLarge when it is larger
	// than maxSize bytes.
	GetJob(ctx context.Context, id, path string, maxSize int64) error
	// PutArtifacts stores the zip of task id's artifacts.
	PutArtifacts(ctx context.Context, id, path string) error
	// DeleteJob removes what task id shipped.
	DeleteJob(ctx context.Context, id string) error
}

// StoreJobs runs the runner jobs of a group from a JobStore; it is the
// worker package's RunnerJobs. Each job is fetched into a private
// directory under Dir, extracted with the checks and Limits of
// Reader.Unzip, and checked by NewJob with Options, as a job from a
// stream. Its artifacts, job_events included, go back to the store as a
// zip.
type StoreJobs struct {
	// Store holds what submitters shipped.
	Store JobStore
	// Dir is where jobs get their directories (the worker's data_dir).
	Dir string
	// Options are the rules jobs are held to; Trusted is for the
	// operator's own pipes, never for a store that submitters write.
	Options JobOptions
	// Limits bound the shipped zip; zero means DefaultLimits.
	Limits Limits
}

var _ worker.RunnerJobs = (*StoreJobs)(nil)

// Open fetches, extracts and checks what task id shipped. Its ident is the
// task id: the events and the artifacts are named after it.
func (s *StoreJobs) Open(ctx context.Context, id string, rj *schemas.RunnerJob) (worker.RunnerJob, error) {
	kw, err := storeKwargs(id, rj)
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(s.Dir, "job-"+id+"-")
	if err != nil {
		return nil, fmt.Errorf("job directory: %w", err)
	}
	j := &storedJob{s: s, id: id, root: root}
	if j.job, err = s.fetch(ctx, id, kw, root); err == nil {
		j.art, err = newArtifactWriter(j.job, true)
	}
	if err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	return j, nil
}

// Discard removes what task id shipped.
func (s *StoreJobs) Discard(ctx context.Context, id string) error {
	return s.Store.DeleteJob(ctx, id)
}

// storeKwargs reads the job's kwargs; its ident, when set, must be the
// task id.
func storeKwargs(id string, rj *schemas.RunnerJob) (*Kwargs, error) {
	var kw Kwargs
	if rj == nil {
		return nil, jobRefuse("runner_job", "", "missing")
	}
	if err := json.Unmarshal(rj.Kwargs, &kw); err != nil {
		return nil, jobRefuse("runner_job.kwargs", "", "%v", err)
	}
	if kw.Ident != "" && kw.Ident != id {
		return nil, jobRefuse("runner_job.kwargs", "ident", "must be the task id %s (the events and artifacts are named after it)", id)
	}
	kw.Ident = id
	return &kw, nil
}

// fetch gets the shipped zip, extracts it into root/private and checks
// the job.
func (s *StoreJobs) fetch(ctx context.Context, id string, kw *Kwargs, root string) (*Job, error) {
	lim := s.Limits.withDefaults()
	zipPath := filepath.Join(root, "job.zip")
	err := s.Store.GetJob(ctx, id, zipPath, lim.MaxZip)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, jobRefuse("runner_job", "", "nothing was shipped for task %s, or the store removed it after its max age", id)
	case errors.Is(err, ErrTooLarge):
		return nil, jobRefuse("runner_job", "", "%v", err)
	case err != nil:
		return nil, err
	}
	dir := filepath.Join(root, "private")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("job directory: %w", err)
	}
	err = ExtractZip(zipPath, dir, lim)
	os.Remove(zipPath)
	if err != nil {
		return nil, jobRefuse("runner_job", "", "the shipped private data directory: %v", err)
	}
	pdd, err := LoadPrivateDataDir(dir)
	if err != nil {
		return nil, jobRefuse("runner_job", "", "%v", err)
	}
	return NewJob(*kw, pdd, s.Options)
}

// storedJob is an opened job of StoreJobs.
type storedJob struct {
	s    *StoreJobs
	id   string
	root string
	job  *Job
	art  *artifactWriter
}

func (j *storedJob) Spec() worker.JobSpec { return j.job.Spec() }

func (j *storedJob) Event(data []byte) { j.art.event(data) }

// Finish writes the artifacts and stores their zip.
func (j *storedJob) Finish(ctx context.Context, command []string, rc int, status string) error {
	if err := j.art.finish(command, rc, status); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	path := filepath.Join(j.root, "artifacts.zip")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	err = WriteZip(f, j.job.ArtifactDir, ZipOptions{})
	if err := errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("artifacts: %w", err)
	}
	return j.s.Store.PutArtifacts(ctx, j.id, path)
}

func (j *storedJob) Close() error { return os.RemoveAll(j.root) }
