package jsbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JobsBucket is the Object Store bucket that carries the private data
// directories of runner jobs to the workers and their artifacts back.
const JobsBucket = "ansible_jobs"

// JobObjects stores the files of runner jobs in JobsBucket. Files go in and
// out in chunks, never whole in memory.
type JobObjects struct {
	obs jetstream.ObjectStore
}

// OpenJobObjects creates or updates JobsBucket: objects older than maxAge
// (0: none) are removed by the server, so a job whose artifacts are never
// fetched does not keep its files for ever.
func OpenJobObjects(ctx context.Context, js jetstream.JetStream, replicas int, maxAge time.Duration) (*JobObjects, error) {
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      JobsBucket,
		Description: "ansible-worker: private data directories of runner jobs and their artifacts",
		TTL:         maxAge,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", JobsBucket, err)
	}
	return &JobObjects{obs: obs}, nil
}

// JobObjectName is where a job's file of the given kind ("job",
// "artifacts") is kept: derived from the prefix, group and task id, never chosen by
// a submitter.
func JobObjectName(names Names, id, kind string) string {
	return names.Prefix + "/" + names.Group + "/" + id + "/" + kind + ".zip"
}

// PutFile stores the file at path as object name.
func (o *JobObjects) PutFile(ctx context.Context, name, path string) (*jetstream.ObjectInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("put %s: %w", name, err)
	}
	defer f.Close()
	info, err := o.obs.Put(ctx, jetstream.ObjectMeta{Name: name}, f)
	if err != nil {
		return nil, fmt.Errorf("put %s: %w", name, err)
	}
	return info, nil
}

// GetFile writes object name to a new file at path (mode 0600). The
// object's digest is checked as it is read; a file that does not match is
// removed.
func (o *JobObjects) GetFile(ctx context.Context, name, path string) error {
	res, err := o.obs.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	defer res.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	_, cerr := io.Copy(f, res)
	if err := errors.Join(cerr, f.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("get %s into %s: %w", name, filepath.Base(path), err)
	}
	return nil
}

// Delete removes object name; one that is gone already is no error.
func (o *JobObjects) Delete(ctx context.Context, name string) error {
	err := o.obs.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}
