//go:build unix

package test

import (
	"archive/zip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// runnerJobWorker starts a worker that runs shipped private data
// directories and returns the server's URL, the worker's configuration
// and its data directory.
func runnerJobWorker(t *testing.T, extra string) (url, cfg, dataDir string, wp *workerProc) {
	t.Helper()
	ns := startServer(t)
	dataDir = filepath.Join(t.TempDir(), "data")
	o := workerOpts{Extra: "allow_runner_jobs: true\n" + extra, DataDir: dataDir}
	wp = startWorker(t, ns.url, o)
	return ns.url, writeConfig(t, ns.url, o), dataDir, wp
}

// jobObjects lists the objects of the runner jobs' bucket.
func jobObjects(t *testing.T, url string) []string {
	t.Helper()
	c := connectClient(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obs, err := c.js.ObjectStore(ctx, jsbridge.JobsBucket)
	require.NoError(t, err)
	list, err := obs.List(ctx)
	if err == jetstream.ErrNoObjectsFound {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	return names
}

// jobDirsLeft are the runner job directories a worker left in its data
// directory.
func jobDirsLeft(t *testing.T, dataDir string) []string {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(dataDir, "job-*"))
	require.NoError(t, err)
	return left
}

// A private data directory shipped through the Object Store gives the
// artifacts and events ansible-runner gives when it runs the directory
// itself; the objects and the worker's copy are removed afterwards.
func TestRunnerJobOverJetStreamMatchesAnsibleRunner(t *testing.T) {
	t.Parallel()
	url, cfg, dataDir, _ := runnerJobWorker(t, "")
	for _, tc := range []struct {
		pb   string
		code int
	}{{"full.yml", 0}, {"fail.yml", 1}} {
		ref := privateDataDir(t, tc.pb)
		out, _ := exec.Command(ansibleRunner, "run", ref, "-p", tc.pb, "--ident", "ref").CombinedOutput()
		want := readArtifacts(t, ref, "ref")
		require.NotEmpty(t, want.Events, string(out))

		dir := privateDataDir(t, tc.pb)
		ident := "rj-" + strings.TrimSuffix(tc.pb, ".yml")
		stdout, stderr, code := runCLI(t, "submit", "-c", cfg, "--private-data-dir", dir, "-p", tc.pb, "--ident", ident, "--wait")
		require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
		require.Contains(t, stdout, "PLAY RECAP", "the output is shown as it runs")
		require.Contains(t, stderr, "artifacts in "+filepath.Join(dir, "artifacts", ident))
		require.Equal(t, want, readArtifacts(t, dir, ident), "artifacts of %s", tc.pb)
		require.FileExists(t, filepath.Join(dir, "artifacts", ident, "command"))
		require.DirExists(t, filepath.Join(dir, "artifacts", ident, "fact_cache"))
		st := connectClient(t, url).waitFinal(t, "production", ident, time.Second)
		require.Equal(t, ident, st.TaskID, "the ident is the task id")
	}
	require.Empty(t, jobObjects(t, url), "the bucket is emptied once the artifacts are fetched")
	require.Empty(t, jobDirsLeft(t, dataDir), "the worker removes its copy")
}

// A group that does not allow runner jobs refuses them, saying which
// setting allows them, and nothing shipped is left behind.
func TestRunnerJobRefusedUnlessAllowed(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	o := workerOpts{}
	startWorker(t, ns.url, o)
	dir := privateDataDir(t, "quick.yml")
	_, stderr, code := runCLI(t, "submit", "-c", writeConfig(t, ns.url, o), "--private-data-dir", dir, "-p", "quick.yml", "--wait")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "worker.allow_runner_jobs")
	require.NoDirExists(t, filepath.Join(dir, "artifacts"), "no artifacts: it never ran")
	require.Empty(t, jobObjects(t, ns.url))
}

// A shipped job is held to the rules of an untrusted stream, and a job
// put in the bucket by hand is extracted with the same checks: it fails
// saying why, and nothing is written outside the job's directory.
func TestRunnerJobHostile(t *testing.T) {
	t.Parallel()
	url, cfg, dataDir, _ := runnerJobWorker(t, "")
	for name, tc := range map[string]struct {
		file, content, want string
	}{
		"loader variable": {"env/envvars", "LD_PRELOAD: /tmp/x.so\n", "LD_PRELOAD"},
		"module path":     {"env/cmdline", "--module-path /tmp", "--module-path"},
		"password":        {"env/passwords", "'^Password:': secret\n", "passwords"},
	} {
		dir := privateDataDir(t, "quick.yml")
		require.NoError(t, os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o600))
		_, stderr, code := runCLI(t, "submit", "-c", cfg, "--private-data-dir", dir, "-p", "quick.yml", "--wait")
		require.Equal(t, 1, code, "%s: %s", name, stderr)
		require.Contains(t, stderr, tc.want, name)
		require.NotContains(t, stderr, "secret", "%s: a value is never echoed", name)
	}

	// A zip that climbs out, put in the bucket by someone with NATS access,
	// with its task published by hand.
	outside := filepath.Join(t.TempDir(), "pwned")
	c := connectClient(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objs, err := jsbridge.BindJobObjects(ctx, c.js, jsbridge.Names{Prefix: "ansible", Group: "production"}, 1, time.Hour)
	require.NoError(t, err)
	zipPath := filepath.Join(t.TempDir(), "evil.zip")
	writeZipEntries(t, zipPath, map[string]string{"project/quick.yml": "- hosts: all\n", "../../../../.." + outside: "x"})
	require.NoError(t, objs.PutJob(ctx, "evil", zipPath))
	task := taskJSON(t, map[string]any{"task_id": "evil", "runner_job": map[string]any{"kwargs": map[string]any{"playbook": "quick.yml"}}})
	jsPub(t, url, "ansible.production.tasks", "evil", task)
	st := c.waitFinal(t, "production", "evil", 30*time.Second)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "the shipped private data directory")
	require.NoFileExists(t, outside)

	// A task whose directory was never shipped.
	jsPub(t, url, "ansible.production.tasks", "none", taskJSON(t, map[string]any{"task_id": "none",
		"runner_job": map[string]any{"kwargs": map[string]any{"playbook": "quick.yml"}}}))
	st = c.waitFinal(t, "production", "none", 30*time.Second)
	require.Equal(t, schemas.StateFailed, st.State)
	require.Contains(t, st.Err(), "nothing was shipped for task none")
	require.Empty(t, jobDirsLeft(t, dataDir))
}

func writeZipEntries(t *testing.T, path string, entries map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	for name, content := range entries {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
}

// A 200 MB private data directory goes through the Object Store with the
// worker's and the submitter's peak resident memory under 64 MB each.
func TestRunnerJobLargeDirectoryMemory(t *testing.T) {
	t.Parallel()
	// /bin/true stands in for ansible-playbook: the job is the point.
	url, cfg, dataDir, wp := runnerJobWorker(t, "ansible_playbook: /bin/true\n")
	dir := bigPrivateDataDir(t, 200<<20)

	sub := exec.Command(binary, "submit", "-c", cfg, "--private-data-dir", dir, "-p", "quick.yml", "--ident", "big", "--wait", "-q")
	var stderr syncBuffer
	sub.Stderr = &stderr
	start := time.Now()
	require.NoError(t, sub.Start())
	stopSub, stopWorker := peakRSS(sub.Process.Pid), peakRSS(wp.cmd.Process.Pid)
	err := sub.Wait()
	subPeak := stopSub()
	require.NoError(t, err, stderr.String())
	elapsed := time.Since(start)
	require.FileExists(t, filepath.Join(dir, "artifacts", "big", "status"))
	require.Empty(t, jobObjects(t, url))
	require.Empty(t, jobDirsLeft(t, dataDir))

	wp.stop(t)
	workerPeak := stopWorker()
	t.Logf("200 MB through the Object Store in %s; peak RSS: submit %.1f MB, worker %.1f MB",
		elapsed.Round(time.Millisecond), float64(subPeak)/(1<<20), float64(workerPeak)/(1<<20))
	require.Positive(t, subPeak)
	require.Positive(t, workerPeak)
	require.Less(t, subPeak, int64(64<<20), "the submitter's peak resident memory")
	require.Less(t, workerPeak, int64(64<<20), "the worker's peak resident memory")
}
