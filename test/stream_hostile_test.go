package test

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// zipEntry is one entry of a hand-made zip: a file, or a symlink when
// link is set.
type zipEntry struct {
	name, body string
	link       bool
}

// transmitStream is a transmit stream with kwargs and a zip of entries.
func transmitStream(t *testing.T, kwargs map[string]any, entries []zipEntry) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(0o644)
		if e.link {
			h.SetMode(os.ModeSymlink | 0o777)
		}
		w, err := zw.CreateHeader(h)
		require.NoError(t, err)
		_, err = w.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	kw, err := json.Marshal(map[string]any{"kwargs": kwargs})
	require.NoError(t, err)
	var s bytes.Buffer
	s.Write(kw)
	fmt.Fprintf(&s, "\n{\"zipfile\": %d}\n", z.Len())
	s.WriteString(base64.StdEncoding.EncodeToString(z.Bytes()))
	s.WriteString("{\"eof\": true}\n")
	return s.Bytes()
}

// goodJob is a private data directory that runs.
func goodJob(extra ...zipEntry) []zipEntry {
	return append([]zipEntry{
		{name: "project/test.yml", body: "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n"},
		{name: "inventory/hosts", body: "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"},
	}, extra...)
}

// Hostile transmit streams get an error status line in ansible-runner's
// form, a non-zero exit, and nothing written outside the job's directory.
func TestStreamHostileInput(t *testing.T) {
	t.Parallel()
	kw := map[string]any{"ident": "h1", "playbook": "test.yml"}
	canary := t.TempDir() // nothing may appear here
	bomb := strings.Repeat("0", 600<<20)
	for name, tc := range map[string]struct {
		stream []byte
		want   string
	}{
		"garbage":        {[]byte("this is not a stream\n"), "Failed to JSON parse a line from transmit stream."},
		"truncated":      {transmitStream(t, kw, goodJob())[:120], "truncated zip block"},
		"bad zip":        {[]byte("{\"kwargs\": {\"playbook\": \"test.yml\"}}\n{\"zipfile\": 8}\nAAAAAAAAAAAA{\"eof\": true}\n"), "Failed to extract private data directory on worker."},
		"climbing entry": {transmitStream(t, kw, goodJob(zipEntry{name: "../../" + filepath.Base(canary) + "/x", body: "x"})), "Failed to extract private data directory on worker."},
		"absolute entry": {transmitStream(t, kw, goodJob(zipEntry{name: canary + "/x", body: "x"})), "Failed to extract private data directory on worker."},
		"symlink out":    {transmitStream(t, kw, goodJob(zipEntry{name: "project/out", body: canary, link: true})), "Failed to extract private data directory on worker."},
		"write through symlink": {transmitStream(t, kw, goodJob(zipEntry{name: "env", body: canary, link: true},
			zipEntry{name: "env/extravars", body: "a: 1"})), "Failed to extract private data directory on worker."},
		"zip bomb":     {transmitStream(t, kw, goodJob(zipEntry{name: "project/bomb", body: bomb})), "Failed to extract private data directory on worker."},
		"interpreter":  {transmitStream(t, kw, goodJob(zipEntry{name: "env/envvars", body: "PYTHONSTARTUP: /tmp/evil.py\n"})), "PYTHONSTARTUP"},
		"loader":       {transmitStream(t, kw, goodJob(zipEntry{name: "env/envvars", body: "LD_PRELOAD: /tmp/evil.so\n"})), "LD_PRELOAD"},
		"@file extra":  {transmitStream(t, kw, goodJob(zipEntry{name: "env/cmdline", body: "-e @/etc/shadow"})), "env/cmdline"},
		"@file limit":  {transmitStream(t, map[string]any{"playbook": "test.yml", "limit": "@/etc/passwd"}, goodJob()), "limit"},
		"module path":  {transmitStream(t, kw, goodJob(zipEntry{name: "env/cmdline", body: "--module-path /tmp/evil"})), "--module-path"},
		"playbook out": {transmitStream(t, map[string]any{"playbook": "../../../etc/passwd"}, goodJob()), "playbook"},
		"passwords":    {transmitStream(t, kw, goodJob(zipEntry{name: "env/passwords", body: "'^SSH password:': secret-pw-42\n"})), "env/passwords"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pdd := filepath.Join(t.TempDir(), "job")
			cmd := exec.Command(binary, "worker", "--private-data-dir", pdd)
			cmd.Stdin = bytes.NewReader(tc.stream)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			require.Error(t, err, "a non-zero exit; stdout: %s", out.String())
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			require.GreaterOrEqual(t, len(lines), 2, out.String())
			var status map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-2]), &status), out.String())
			require.Equal(t, "error", status["status"], out.String())
			require.Contains(t, fmt.Sprint(status["job_explanation"], status["result_traceback"]), tc.want)
			require.JSONEq(t, `{"eof": true}`, lines[len(lines)-1])
			require.NotContains(t, out.String()+errOut.String(), "secret-pw-42")
			left, err := os.ReadDir(canary)
			require.NoError(t, err)
			require.Empty(t, left, "nothing written outside the job's directory")
		})
	}
}

// `worker cleanup` removes old private data directories, keeps recent ones
// and those whose job still runs, and refuses patterns that reach system
// directories and container image options without a container engine.
func TestStreamWorkerCleanup(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{"job-old", "job-recent", "job-running", "keep-old"} {
		dir := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "project"), 0o700))
		if name == "job-running" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "pid"), []byte(fmt.Sprint(os.Getpid())), 0o600))
		}
		if name != "job-recent" {
			require.NoError(t, os.Chtimes(dir, old, old))
		}
	}
	out, errOut, code := runCLI(t, "worker", "cleanup", "--file-pattern", filepath.Join(root, "job-*"), "--grace-period", "60")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Removed 1 private data directories")
	left, err := os.ReadDir(root)
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"job-recent", "job-running", "keep-old"}, names)

	_, errOut, code = runCLI(t, "worker", "cleanup", "--file-pattern", "/*")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "system directory")
	_, errOut, code = runCLI(t, "worker", "cleanup", "--file-pattern", filepath.Join(root, "job-*"), "--remove-images", "quay.io/x:1")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "container engine")
}
