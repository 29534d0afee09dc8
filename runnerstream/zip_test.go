//go:build unix

package runnerstream_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

// rsMtime is an mtime every format holds exactly (even seconds, local).
func rsMtime() time.Time { return time.Date(2023, 4, 5, 6, 7, 8, 0, time.Local) }

// rsInZone makes loc the local zone for the rest of the test, so that a
// test run in UTC still tells local from UTC. Tests using it must not run
// in parallel.
func rsInZone(t *testing.T, loc *time.Location) {
	old := time.Local
	time.Local = loc
	t.Cleanup(func() { time.Local = old })
}

// rsTree makes a directory with what a private data directory may hold.
func rsTree(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "src")
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"project/test.yml":       {"- hosts: localhost\n", 0o644},
		"project/run.sh":         {"#!/bin/sh\necho hi\n", 0o755},
		"env/ssh_key":            {"secret", 0o600},
		"inventory/hosts":        {"localhost ansible_connection=local\n", 0o644},
		"project/roles/r/a.yml":  {"x", 0o640},
		"artifacts/old/stdout":   {"old run", 0o644},
		"project/setuid-ish.bin": {"s", 0o755 | os.ModeSetuid},
	}
	for name, f := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(f.data), 0o600))
		require.NoError(t, os.Chmod(p, f.mode))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "project/empty"), 0o750))
	require.NoError(t, os.Symlink("test.yml", filepath.Join(dir, "project/link.yml")))
	require.NoError(t, os.Symlink("roles/r", filepath.Join(dir, "project/rlink")))
	require.NoError(t, os.Symlink("../inventory/hosts", filepath.Join(dir, "project/hosts")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "env/fifo"), 0o600))
	rsSetMtimes(t, dir)
	return dir
}

// rsSetMtimes sets every mtime under dir (dir excluded, links skipped).
func rsSetMtimes(t *testing.T, dir string) {
	var paths []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir && d.Type()&fs.ModeSymlink == 0 {
			paths = append(paths, p)
		}
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- { // children first: they touch their parent
		require.NoError(t, os.Chtimes(paths[i], rsMtime(), rsMtime()))
	}
}

// rsListing describes a tree: type, mode, mtime, content or link target.
func rsListing(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		require.NoError(t, err)
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			desc += " " + string(data) + " " + fi.ModTime().Format(time.RFC3339)
		default:
			desc += " " + fi.ModTime().Format(time.RFC3339)
		}
		out[filepath.ToSlash(rel)] = desc
		return nil
	}))
	return out
}

func TestRoundTrip(t *testing.T) {
	rsInZone(t, time.FixedZone("west", -7*3600))
	src := rsTree(t)
	var stream bytes.Buffer
	w := runnerstream.NewWriter(&stream)
	require.NoError(t, w.JSON(map[string]any{"kwargs": map[string]any{"playbook": "test.yml"}}))
	exclude := func(rel string) bool { return rel == "artifacts" }
	require.NoError(t, w.ZipDir(src, runnerstream.ZipOptions{Exclude: exclude, TempDir: t.TempDir()}))
	require.NoError(t, w.EOF())

	r := runnerstream.NewReader(&stream, runnerstream.Limits{})
	rsNextKind(t, r, runnerstream.KindKwargs)
	rsNextKind(t, r, runnerstream.KindZip)
	dest := filepath.Join(t.TempDir(), "dest")
	require.NoError(t, r.Unzip(dest))
	rsNextKind(t, r, runnerstream.KindEOF)
	_, err := r.Next()
	require.Equal(t, io.EOF, err)

	want := rsListing(t, src)
	require.Contains(t, want, "env/fifo")
	delete(want, "env/fifo") // skipped
	delete(want, "artifacts")
	delete(want, "artifacts/old")
	delete(want, "artifacts/old/stdout")
	want["project/setuid-ish.bin"] = strings.Replace(want["project/setuid-ish.bin"], "u", "-", 1) // setuid dropped
	require.Equal(t, want, rsListing(t, dest))
	require.Equal(t, "-rwxr-xr-x s "+rsMtime().Format(time.RFC3339), want["project/setuid-ish.bin"])
}

// The entries are what Python's zipfile writes in ansible-runner's
// stream_dir: unix creator, st_mode in the high bits, the MS-DOS directory
// bit, stored symlinks holding their target, deflated files.
func TestZipEntriesLikeRunner(t *testing.T) {
	rsInZone(t, time.FixedZone("east", 5*3600))
	src := rsTree(t)
	var stream bytes.Buffer
	require.NoError(t, runnerstream.NewWriter(&stream).ZipDir(src, runnerstream.ZipOptions{}))
	head, b64, ok := strings.Cut(stream.String(), "\n")
	require.True(t, ok)
	var hdr struct{ Zipfile int }
	require.NoError(t, json.Unmarshal([]byte(head), &hdr))
	require.Regexp(t, `^\{"zipfile": \d+\}$`, head)
	require.Len(t, b64, 4*((hdr.Zipfile+2)/3), "base64 without wrapping nor final newline")
	raw, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	require.Len(t, raw, hdr.Zipfile)
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	require.NoError(t, err)

	got := map[string]*zip.File{}
	for _, f := range zr.File {
		require.EqualValues(t, 3, f.CreatorVersion>>8, f.Name)
		got[f.Name] = f
	}
	require.NotContains(t, got, "env/fifo")
	require.Contains(t, got, "artifacts/old/stdout")
	require.EqualValues(t, 0o040750<<16|0x10, got["project/empty/"].ExternalAttrs)
	require.EqualValues(t, 0o100755<<16, got["project/run.sh"].ExternalAttrs)
	require.EqualValues(t, 0o104755<<16, got["project/setuid-ish.bin"].ExternalAttrs)
	require.Equal(t, zip.Deflate, got["project/run.sh"].Method)
	link := got["project/link.yml"]
	require.EqualValues(t, 0o120777<<16, link.ExternalAttrs)
	rc, err := link.Open()
	require.NoError(t, err)
	target, _ := io.ReadAll(rc)
	require.Equal(t, "test.yml", string(target))
	// Python reads the MS-DOS date as local time.
	require.Equal(t, rsMtime().Format("2006-01-02 15:04:05"), got["project/run.sh"].Modified.Format("2006-01-02 15:04:05"))
}

// The real ansible-runner 2.3.1 worker accepts a stream we write, extracts
// our zip with its modes and symlinks, runs the playbook, and we read its
// result stream. This is the proof of wire compatibility.
func TestRealWorkerAcceptsOurStream(t *testing.T) {
	runner, err := exec.LookPath("ansible-runner")
	require.NoError(t, err, "ansible-runner is part of the test set-up (scripts/deps.sh)")
	src := filepath.Join(t.TempDir(), "src")
	for name, data := range map[string]string{
		"project/test.yml": "- hosts: localhost\n  gather_facts: false\n  tasks: [{debug: {msg: hi}}]\n",
		"inventory/hosts":  "localhost ansible_connection=local\n",
		"project/run.sh":   "#!/bin/sh\n",
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte(data), 0o644))
	}
	require.NoError(t, os.Chmod(filepath.Join(src, "project/run.sh"), 0o750))
	require.NoError(t, os.Symlink("test.yml", filepath.Join(src, "project/link.yml")))
	rsSetMtimes(t, src)

	var in bytes.Buffer
	w := runnerstream.NewWriter(&in)
	require.NoError(t, w.JSON(map[string]any{"kwargs": map[string]any{"ident": "rs1", "playbook": "link.yml"}}))
	require.NoError(t, w.ZipDir(src, runnerstream.ZipOptions{}))
	require.NoError(t, w.EOF())

	pdd := filepath.Join(t.TempDir(), "pdd")
	out := rsRunWorker(t, runner, pdd, &in)
	rsRequireSuccessful(t, out)

	// What Python extracted from our zip.
	rsRequireMode(t, filepath.Join(pdd, "project/run.sh"), 0o750)
	target, err := os.Readlink(filepath.Join(pdd, "project/link.yml"))
	require.NoError(t, err)
	require.Equal(t, "test.yml", target)
	fi, err := os.Stat(filepath.Join(pdd, "inventory/hosts"))
	require.NoError(t, err)
	require.True(t, rsMtime().Equal(fi.ModTime()), "mtime %v", fi.ModTime())
}

// rsRunWorker runs `ansible-runner worker` on in, with an empty
// environment, and returns its stdout.
func rsRunWorker(t *testing.T, runner, pdd string, in io.Reader) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, runner, "worker", "--private-data-dir", pdd)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	if tz, ok := os.LookupEnv("TZ"); ok { // Python must see our local zone
		cmd.Env = append(cmd.Env, "TZ="+tz)
	}
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "stderr: %s", stderr.String())
	return out
}

// rsRequireSuccessful reads a worker's stream and checks it reports
// success, with the artifacts saying rc 0.
func rsRequireSuccessful(t *testing.T, out []byte) {
	r := runnerstream.NewReader(bytes.NewReader(out), runnerstream.Limits{})
	r.Side = runnerstream.SideProcess
	art := filepath.Join(t.TempDir(), "art")
	var last string
	for {
		m, err := r.Next()
		require.NoError(t, err, "worker output:\n%s", out)
		if m.Kind == runnerstream.KindStatus {
			var s struct{ Status string }
			require.NoError(t, json.Unmarshal(m.Raw, &s))
			last = s.Status
		}
		if m.Kind == runnerstream.KindZip {
			require.NoError(t, r.Unzip(art))
		}
		if m.Kind == runnerstream.KindEOF {
			break
		}
	}
	require.Equal(t, "successful", last, "worker output:\n%s", out)
	rc, err := os.ReadFile(filepath.Join(art, "rc"))
	require.NoError(t, err)
	require.Equal(t, "0", string(rc))
}
