package client_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/runnerstream"
)

// jobDir makes a private data directory with a playbook of content.
func jobDir(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "project"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "project", "site.yml"), []byte(content), 0o644))
	return dir
}

// jobBundle is a client with the group's bucket of runner jobs.
type jobBundle struct {
	cl   *client.Client
	obs  jetstream.ObjectStore
	objs *jsbridge.JobObjects
	js   jetstream.JetStream
}

func newJobBundle(t *testing.T) *jobBundle {
	t.Helper()
	sys := newSystem(t, false)
	cl := connect(t, sys)
	js, err := jetstream.New(sys.nc)
	require.NoError(t, err)
	ctx := context.Background()
	objs, err := jsbridge.OpenJobObjects(ctx, js, cl.Names(), 1, time.Hour)
	require.NoError(t, err)
	obs, err := js.ObjectStore(ctx, jsbridge.JobsBucket)
	require.NoError(t, err)
	return &jobBundle{cl: cl, obs: obs, objs: objs, js: js}
}

// A runner job's directory is in the bucket under its task id before its
// task is queued, and the task carries its kwargs with the id as ident.
func TestSubmitRunnerJobShipsThenQueues(t *testing.T) {
	t.Parallel()
	b := newJobBundle(t)
	ctx := context.Background()
	dir := jobDir(t, "- hosts: all\n")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "artifacts", "old"), 0o755))
	forks := 2
	rcpt, err := b.cl.SubmitRunnerJob(ctx, client.RunnerJob{TaskID: "rj-1", Dir: dir,
		Kwargs: runnerstream.Kwargs{Playbook: "site.yml", Forks: &forks}, Timeout: 60})
	require.NoError(t, err)
	require.Equal(t, "rj-1", rcpt.TaskID)

	info, err := b.obs.GetInfo(ctx, "ansible/production/rj-1/job.zip")
	require.NoError(t, err)
	require.Positive(t, info.Size)
	zipPath := filepath.Join(t.TempDir(), "job.zip")
	require.NoError(t, b.objs.GetJob(ctx, "rj-1", zipPath, 0))
	zr, err := zip.OpenReader(zipPath)
	require.NoError(t, err)
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	require.Contains(t, names, "project/site.yml")
	for _, n := range names {
		require.NotContains(t, n, "artifacts", "earlier artifacts are not shipped")
	}

	stream, err := b.js.Stream(ctx, jsbridge.TasksStream)
	require.NoError(t, err)
	msg, err := stream.GetMsg(ctx, rcpt.Sequence)
	require.NoError(t, err)
	var task struct {
		TaskID    string `json:"task_id"`
		Timeout   int    `json:"timeout"`
		RunnerJob struct {
			Kwargs map[string]any `json:"kwargs"`
		} `json:"runner_job"`
	}
	require.NoError(t, json.Unmarshal(msg.Data, &task))
	require.Equal(t, "rj-1", task.TaskID)
	require.Equal(t, 60, task.Timeout)
	require.Equal(t, "rj-1", task.RunnerJob.Kwargs["ident"])
	require.Equal(t, "site.yml", task.RunnerJob.Kwargs["playbook"])
	require.EqualValues(t, 2, task.RunnerJob.Kwargs["forks"])
}

// A second submission of an id in use is refused before it uploads: the
// first job's directory is never replaced.
func TestSubmitRunnerJobNeverReplacesAnotherTasks(t *testing.T) {
	t.Parallel()
	b := newJobBundle(t)
	ctx := context.Background()
	_, err := b.cl.SubmitRunnerJob(ctx, client.RunnerJob{TaskID: "rj-1", Dir: jobDir(t, "# first\n"),
		Kwargs: runnerstream.Kwargs{Playbook: "site.yml"}})
	require.NoError(t, err)
	before, err := b.obs.GetInfo(ctx, "ansible/production/rj-1/job.zip")
	require.NoError(t, err)

	_, err = b.cl.SubmitRunnerJob(ctx, client.RunnerJob{TaskID: "rj-1", Dir: jobDir(t, "# second, longer\n"),
		Kwargs: runnerstream.Kwargs{Playbook: "site.yml"}})
	require.ErrorIs(t, err, client.ErrTaskExists)
	after, err := b.obs.GetInfo(ctx, "ansible/production/rj-1/job.zip")
	require.NoError(t, err)
	require.Equal(t, before.Digest, after.Digest)

	_, err = b.cl.Submit(ctx, quick("plain"))
	require.NoError(t, err)
	_, err = b.cl.SubmitRunnerJob(ctx, client.RunnerJob{TaskID: "plain", Dir: jobDir(t, ""),
		Kwargs: runnerstream.Kwargs{Playbook: "site.yml"}})
	require.ErrorIs(t, err, client.ErrTaskExists)
	_, err = b.obs.GetInfo(ctx, "ansible/production/plain/job.zip")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound, "nothing uploaded for an id in use")
}

func TestSubmitRunnerJobInvalid(t *testing.T) {
	t.Parallel()
	b := newJobBundle(t)
	ctx := context.Background()
	_, err := b.cl.SubmitRunnerJob(ctx, client.RunnerJob{TaskID: "x", Dir: filepath.Join(t.TempDir(), "none"),
		Kwargs: runnerstream.Kwargs{Playbook: "site.yml"}})
	require.ErrorIs(t, err, client.ErrInvalid)
	require.ErrorContains(t, err, "not a directory")
	_, err = b.cl.SubmitRunnerJob(ctx, client.RunnerJob{TaskID: "x", Dir: jobDir(t, ""),
		Kwargs: runnerstream.Kwargs{Playbook: "site.yml", Ident: "other"}})
	require.ErrorIs(t, err, client.ErrInvalid)
	require.ErrorContains(t, err, `the job's ident "other" must be its task id "x"`)
	_, err = b.cl.Status(ctx, "x")
	require.ErrorIs(t, err, client.ErrNotFound, "nothing queued")
}

// FetchArtifacts writes what the worker sent back where ansible-runner's
// process stage writes it and empties the bucket; a job that never ran
// has none, and no directory is made for them.
func TestFetchArtifacts(t *testing.T) {
	t.Parallel()
	b := newJobBundle(t)
	ctx := context.Background()
	dir := jobDir(t, "")
	_, err := b.cl.SubmitRunnerJob(ctx, client.RunnerJob{TaskID: "rj-1", Dir: dir, Kwargs: runnerstream.Kwargs{Playbook: "site.yml"}})
	require.NoError(t, err)

	_, err = b.cl.FetchArtifacts(ctx, "rj-1", dir)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.NoDirExists(t, filepath.Join(dir, "artifacts"))
	_, err = b.obs.GetInfo(ctx, "ansible/production/rj-1/job.zip")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound, "removed all the same")

	art := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(art, "job_events"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(art, "rc"), []byte("0"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(art, "job_events", "1-u.json"), []byte(`{"counter":1}`), 0o600))
	zipPath := filepath.Join(t.TempDir(), "a.zip")
	f, err := os.Create(zipPath)
	require.NoError(t, err)
	require.NoError(t, runnerstream.WriteZip(f, art, runnerstream.ZipOptions{}))
	require.NoError(t, f.Close())
	require.NoError(t, b.objs.PutArtifacts(ctx, "rj-2", zipPath))

	got, err := b.cl.FetchArtifacts(ctx, "rj-2", dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "artifacts", "rj-2"), got)
	require.FileExists(t, filepath.Join(got, "rc"))
	require.FileExists(t, filepath.Join(got, "job_events", "1-u.json"))
	_, err = b.obs.GetInfo(ctx, "ansible/production/rj-2/artifacts.zip")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound)
}
