package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/runnerstream"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// RunnerJob is an ansible-runner private data directory to run on a worker
// of the group, as ansible-runner's transmit stage sends one to its worker
// stage; the workers must allow it (worker.allow_runner_jobs).
type RunnerJob struct {
	// TaskID is the task's id and the job's ident: the events, the status
	// and the artifact directory are named after it. "" means NewTaskID.
	TaskID string
	// Dir is the private data directory. Its artifacts directory is not
	// shipped.
	Dir string
	// Kwargs are the run arguments (playbook, inventory, limit, ...);
	// their Ident, when set, must be TaskID.
	Kwargs runnerstream.Kwargs
	// Timeout in seconds bounds the run (0: the worker's task_timeout).
	Timeout int
}

// SubmitRunnerJob ships job.Dir, zipped through a temporary file (never
// whole in memory), to the group's Object Store bucket
// (jsbridge.JobsBucket) and submits the task that runs it. The task id is
// claimed first, so nothing shipped replaces another task's; when the
// submission fails, what was shipped is removed. Fetch the artifacts with
// FetchArtifacts once the task has ended.
func (c *Client) SubmitRunnerJob(ctx context.Context, job RunnerJob) (*Receipt, error) {
	if job.TaskID == "" {
		job.TaskID = NewTaskID()
	}
	if st, err := os.Stat(job.Dir); err != nil || !st.IsDir() {
		return nil, withKind(ErrInvalid, fmt.Errorf("private data directory %s: not a directory", job.Dir))
	}
	body, err := runnerJobTask(job)
	if err != nil {
		return nil, err
	}
	objs, err := c.jobObjects(ctx)
	if err != nil {
		return nil, err
	}
	return c.submit(ctx, body, func(ctx context.Context, id string) error {
		if err := shipDir(ctx, objs, id, job.Dir); err != nil {
			_ = objs.DeleteAll(context.WithoutCancel(ctx), id)
			return err
		}
		return nil
	})
}

// runnerJobTask is the task request of job.
func runnerJobTask(job RunnerJob) ([]byte, error) {
	kw := job.Kwargs
	if kw.Ident != "" && kw.Ident != job.TaskID {
		return nil, withKind(ErrInvalid, fmt.Errorf("the job's ident %q must be its task id %q", kw.Ident, job.TaskID))
	}
	kw.Ident = job.TaskID
	kwargs, err := json.Marshal(kw)
	if err != nil {
		return nil, withKind(ErrInvalid, fmt.Errorf("encode the job's kwargs: %w", err))
	}
	task := map[string]any{"task_id": job.TaskID, "runner_job": map[string]json.RawMessage{"kwargs": kwargs}}
	if job.Timeout != 0 {
		task["timeout"] = job.Timeout
	}
	body, err := json.Marshal(task)
	if err != nil {
		return nil, withKind(ErrInvalid, fmt.Errorf("encode task request %s: %w", job.TaskID, err))
	}
	if _, err := schemas.ParseTaskRequest(body); err != nil {
		return nil, withKind(ErrInvalid, err)
	}
	return body, nil
}

// shipDir zips dir into a temporary file and stores it as task id's job.
func shipDir(ctx context.Context, objs *jsbridge.JobObjects, id, dir string) error {
	f, err := os.CreateTemp("", "ansible-worker-job-*.zip")
	if err != nil {
		return fmt.Errorf("ship %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	err = runnerstream.WriteZip(f, dir, runnerstream.ZipOptions{Exclude: runnerstream.NotShipped})
	if err := errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("ship %s: %w", dir, err)
	}
	if err := objs.PutJob(ctx, id, f.Name()); err != nil {
		return fmt.Errorf("ship %s: %w", dir, err)
	}
	return nil
}

// FetchArtifacts writes the artifacts that task id's runner job sent back
// into dir/artifacts/<id>/, as ansible-runner's process stage writes them
// (job_events/, rc, status, stdout, command, fact_cache/), with the checks
// of runnerstream.ExtractZip, and removes the job's files from the bucket.
// It returns the artifact directory. A job that never ran has none: the
// error then wraps fs.ErrNotExist (and the files are removed all the same).
func (c *Client) FetchArtifacts(ctx context.Context, id, dir string) (string, error) {
	if err := checkTaskID(id); err != nil {
		return "", err
	}
	objs, err := c.jobObjects(ctx)
	if err != nil {
		return "", err
	}
	art, err := fetchArtifacts(ctx, objs, id, filepath.Join(dir, "artifacts", id))
	if derr := objs.DeleteAll(ctx, id); derr != nil {
		c.log.Warn("the job's files stay in the bucket until its max age", "task_id", id, "err", derr)
	}
	return art, err
}

// fetchArtifacts gets task id's artifacts into a temporary file and, when
// there are some, extracts them into art.
func fetchArtifacts(ctx context.Context, objs *jsbridge.JobObjects, id, art string) (string, error) {
	tmp, err := os.MkdirTemp("", "ansible-worker-artifacts-")
	if err != nil {
		return "", fmt.Errorf("artifacts of %s: %w", id, err)
	}
	defer os.RemoveAll(tmp)
	zipPath := filepath.Join(tmp, "artifacts.zip")
	err = objs.GetArtifacts(ctx, id, zipPath, runnerstream.DefaultLimits().MaxZip)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("artifacts of %s: none (the job did not run): %w", id, err)
	}
	if err == nil {
		err = os.MkdirAll(art, 0o700)
	}
	if err == nil {
		err = runnerstream.ExtractZip(zipPath, art, runnerstream.Limits{})
	}
	if err != nil {
		return "", fmt.Errorf("artifacts of %s: %w", id, err)
	}
	return art, nil
}

// jobObjects binds to the bucket of runner jobs, creating it as a worker
// would when it is missing.
func (c *Client) jobObjects(ctx context.Context) (*jsbridge.JobObjects, error) {
	objs, err := jsbridge.BindJobObjects(ctx, c.js, c.names, c.prov.Replicas, c.prov.JobsMaxAge)
	if err != nil {
		return nil, withKind(ErrNotProvisioned, err)
	}
	return objs, nil
}
