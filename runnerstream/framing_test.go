//go:build unix

package runnerstream_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

// rsSandbox returns a fresh base directory holding dest (not created) and
// canary (empty): anything that escapes dest lands in base or canary.
func rsSandbox(t testing.TB) (base, dest, canary string) {
	base = t.TempDir()
	canary = filepath.Join(base, "canary")
	require.NoError(t, os.Mkdir(canary, 0o755))
	return base, filepath.Join(base, "dest"), canary
}

// rsRequireContained fails unless canary is empty and base holds nothing
// but dest and canary.
func rsRequireContained(t testing.TB, base string) {
	t.Helper()
	names, err := os.ReadDir(base)
	require.NoError(t, err)
	for _, n := range names {
		require.Contains(t, []string{"dest", "canary"}, n.Name(), "something was written outside dest")
	}
	inCanary, err := os.ReadDir(filepath.Join(base, "canary"))
	require.NoError(t, err)
	require.Empty(t, inCanary, "something was written into the canary")
}

// rsBlock frames zip bytes as a zip block followed by the end.
func rsBlock(zipBytes []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"zipfile\": %d}\n", len(zipBytes))
	b.WriteString(base64.StdEncoding.EncodeToString(zipBytes))
	b.WriteString("{\"eof\": true}\n")
	return b.Bytes()
}

func rsSample(t *testing.T, name string) []byte {
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

// rsNextKind reads one message and checks its kind.
func rsNextKind(t *testing.T, r *runnerstream.Reader, want runnerstream.Kind) runnerstream.Message {
	t.Helper()
	m, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, want, m.Kind, "message %s", m.Raw)
	return m
}

func TestWriterJSON(t *testing.T) {
	var out bytes.Buffer
	w := runnerstream.NewWriter(&out)
	require.NoError(t, w.JSON(map[string]any{"stdout": "a\nb <&> é"}))
	require.NoError(t, w.JSON(json.RawMessage("{\n \"a\" :\n 1 }")))
	require.ErrorIs(t, w.JSON("not an object"), runnerstream.ErrNotObject)
	require.NoError(t, w.EOF())
	require.Equal(t, "{\"stdout\":\"a\\nb <&> é\"}\n{\"a\":1}\n{\"eof\": true}\n", out.String())
}

type rsFailWriter struct{ n int }

func (f *rsFailWriter) Write(p []byte) (int, error) {
	if f.n++; f.n > 1 {
		return 0, errors.New("pipe closed")
	}
	return len(p), nil
}

// A write error breaks the stream for good: nothing may follow half a
// message.
func TestWriterErrorIsSticky(t *testing.T) {
	w := runnerstream.NewWriter(&rsFailWriter{})
	require.NoError(t, w.JSON(map[string]any{"status": "running"}))
	require.ErrorContains(t, w.EOF(), "pipe closed")
	require.ErrorContains(t, w.JSON(map[string]any{"status": "x"}), "pipe closed")
}

// The real transmit stream of ansible-runner 2.3.1: kwargs, the private
// data directory, eof.
func TestReadTransmitSample(t *testing.T) {
	rsInZone(t, time.FixedZone("east", 5*3600))
	r := runnerstream.NewReader(bytes.NewReader(rsSample(t, "transmit.bin")), runnerstream.Limits{})
	r.Side = runnerstream.SideWorker
	m := rsNextKind(t, r, runnerstream.KindKwargs)
	var kw struct{ Kwargs map[string]any }
	require.NoError(t, json.Unmarshal(m.Raw, &kw))
	require.Equal(t, "0123456789abcdef0123456789abcdef", kw.Kwargs["ident"])
	require.Equal(t, "test.yml", kw.Kwargs["playbook"])

	m = rsNextKind(t, r, runnerstream.KindZip)
	require.EqualValues(t, 868, m.ZipSize)
	dest := filepath.Join(t.TempDir(), "pdd")
	require.NoError(t, r.Unzip(dest))
	rsNextKind(t, r, runnerstream.KindEOF)
	_, err := r.Next()
	require.Equal(t, io.EOF, err)

	play, err := os.ReadFile(filepath.Join(dest, "project/test.yml"))
	require.NoError(t, err)
	require.Equal(t, "- hosts: localhost\n  gather_facts: false\n  tasks: [{debug: {msg: hi}}]\n", string(play))
	rsRequireMode(t, filepath.Join(dest, "project/run.sh"), 0o755)
	rsRequireMode(t, filepath.Join(dest, "project/test.yml"), 0o644)
	rsRequireMode(t, filepath.Join(dest, "project/empty"), os.ModeDir|0o755)
	target, err := os.Readlink(filepath.Join(dest, "project/link.yml"))
	require.NoError(t, err)
	require.Equal(t, "test.yml", target)
	// Python wrote the local wall clock of the mtime; it is read back as
	// local time, whatever the zone.
	fi, err := os.Stat(filepath.Join(dest, "project/test.yml"))
	require.NoError(t, err)
	require.True(t, time.Date(2024, 5, 6, 7, 8, 10, 0, time.Local).Equal(fi.ModTime()), "mtime %v", fi.ModTime())
}

func rsRequireMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	require.Equal(t, want, fi.Mode(), p)
}

// The real worker stream of ansible-runner 2.3.1: statuses, events, the
// artifacts, eof; read with each Side.
func TestReadWorkerSample(t *testing.T) {
	for _, side := range []runnerstream.Side{runnerstream.SideProcess, ""} {
		r := runnerstream.NewReader(bytes.NewReader(rsSample(t, "worker.bin")), runnerstream.Limits{})
		r.Side = side
		var kinds []runnerstream.Kind
		var statuses []string
		for {
			m, err := r.Next()
			require.NoError(t, err)
			kinds = append(kinds, m.Kind)
			if m.Kind == runnerstream.KindStatus {
				var s struct{ Status string }
				require.NoError(t, json.Unmarshal(m.Raw, &s))
				statuses = append(statuses, s.Status)
			}
			if m.Kind == runnerstream.KindZip {
				require.NoError(t, r.Unzip(filepath.Join(t.TempDir(), "art")))
			}
			if m.Kind == runnerstream.KindEOF {
				break
			}
		}
		ev, st, zp, eof := runnerstream.KindEvent, runnerstream.KindStatus, runnerstream.KindZip, runnerstream.KindEOF
		require.Equal(t, []runnerstream.Kind{st, st, ev, ev, ev, ev, ev, ev, st, zp, eof}, kinds)
		require.Equal(t, []string{"starting", "running", "successful"}, statuses)
	}
}

func TestWorkerSampleArtifacts(t *testing.T) {
	r := runnerstream.NewReader(bytes.NewReader(rsSample(t, "worker.bin")), runnerstream.Limits{})
	art := filepath.Join(t.TempDir(), "art")
	for {
		m, err := r.Next()
		require.NoError(t, err)
		if m.Kind == runnerstream.KindZip {
			require.EqualValues(t, 1185, m.ZipSize)
			require.NoError(t, r.Unzip(art))
			break
		}
	}
	for name, want := range map[string]string{"rc": "0", "status": "successful", "stderr": ""} {
		got, err := os.ReadFile(filepath.Join(art, name))
		require.NoError(t, err)
		require.Equal(t, want, string(got), name)
	}
	rsRequireMode(t, filepath.Join(art, "rc"), 0o600)
	rsRequireMode(t, filepath.Join(art, "job_events"), os.ModeDir|0o700)
	rsRequireMode(t, filepath.Join(art, "fact_cache"), os.ModeDir|0o755)
}

// Keys decide the kind in ansible-runner's order, which differs by side.
func TestKindOrderBySide(t *testing.T) {
	cases := []struct {
		line string
		want map[runnerstream.Side]runnerstream.Kind
	}{
		{`{"status": "x", "zipfile": 0}`, map[runnerstream.Side]runnerstream.Kind{
			runnerstream.SideWorker: runnerstream.KindZip, runnerstream.SideProcess: runnerstream.KindStatus, "": runnerstream.KindStatus}},
		{`{"kwargs": {}, "status": "x"}`, map[runnerstream.Side]runnerstream.Kind{
			runnerstream.SideWorker: runnerstream.KindKwargs, runnerstream.SideProcess: runnerstream.KindStatus, "": runnerstream.KindKwargs}},
		{`{"kwargs": {}}`, map[runnerstream.Side]runnerstream.Kind{
			runnerstream.SideWorker: runnerstream.KindKwargs, runnerstream.SideProcess: runnerstream.KindEvent, "": runnerstream.KindKwargs}},
		{`{"eof": false, "event": "x"}`, map[runnerstream.Side]runnerstream.Kind{
			runnerstream.SideWorker: runnerstream.KindEOF, runnerstream.SideProcess: runnerstream.KindEOF, "": runnerstream.KindEOF}},
		{`{"event": "keep\u0061live", "counter": 0, "uuid": 0}`, map[runnerstream.Side]runnerstream.Kind{
			runnerstream.SideWorker: runnerstream.KindKeepalive, runnerstream.SideProcess: runnerstream.KindKeepalive, "": runnerstream.KindKeepalive}},
		{`{"event": "runner_on_ok", "counter": 5}`, map[runnerstream.Side]runnerstream.Kind{
			runnerstream.SideWorker: runnerstream.KindEvent, runnerstream.SideProcess: runnerstream.KindEvent, "": runnerstream.KindEvent}},
	}
	for _, c := range cases {
		for side, want := range c.want {
			r := runnerstream.NewReader(strings.NewReader(c.line+"\n"), runnerstream.Limits{})
			r.Side = side
			m, err := r.Next()
			require.NoError(t, err)
			require.Equal(t, want, m.Kind, "%s as %q", c.line, side)
			require.Equal(t, c.line, string(m.Raw))
		}
	}
}

// ansible-runner's readline returns a last line without its newline, and
// json.loads accepts it.
func TestLastLineWithoutNewline(t *testing.T) {
	r := runnerstream.NewReader(strings.NewReader("{\"status\": \"running\"}\r\n{\"eof\": true}"), runnerstream.Limits{})
	rsNextKind(t, r, runnerstream.KindStatus)
	rsNextKind(t, r, runnerstream.KindEOF)
	_, err := r.Next()
	require.Equal(t, io.EOF, err)
}

// The error statuses are those ansible-runner 2.3.1's worker sent for the
// same input (testdata/worker-garbage.bin, worker-badzip.bin).
func TestErrorStatusMatchesRunner(t *testing.T) {
	r := runnerstream.NewReader(strings.NewReader("not json\n"), runnerstream.Limits{})
	_, err := r.Next()
	require.Error(t, err)
	rsRequireSameStatus(t, "worker-garbage.bin", runnerstream.ErrorStatus(err, runnerstream.SideWorker), false)

	in := "{\"kwargs\": {\"playbook\": \"x.yml\"}}\n{\"zipfile\": 10}\nAAAAAAAAAAAAAAAA{\"eof\": true}\n"
	r = runnerstream.NewReader(strings.NewReader(in), runnerstream.Limits{})
	r.Side = runnerstream.SideWorker
	rsNextKind(t, r, runnerstream.KindKwargs)
	rsNextKind(t, r, runnerstream.KindZip)
	err = r.Unzip(t.TempDir())
	require.ErrorIs(t, err, runnerstream.ErrBadZip)
	rsRequireSameStatus(t, "worker-badzip.bin", runnerstream.ErrorStatus(err, runnerstream.SideWorker), true)
	// The zip was bad, the framing not: the stream goes on.
	rsNextKind(t, r, runnerstream.KindEOF)

	st := runnerstream.ErrorStatus(io.EOF, runnerstream.SideProcess)
	require.Equal(t, "Failed to JSON parse a line from worker stream.", st["job_explanation"])
}

// rsRequireSameStatus compares got with the first line of a sample,
// result_traceback only for presence (Python's is a traceback).
func rsRequireSameStatus(t *testing.T, sample string, got map[string]any, traceback bool) {
	t.Helper()
	lines := strings.SplitN(string(rsSample(t, sample)), "\n", 3)
	require.Equal(t, `{"eof": true}`, lines[1])
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &want))
	require.Equal(t, traceback, want["result_traceback"] != nil)
	require.Equal(t, traceback, got["result_traceback"] != nil)
	delete(want, "result_traceback")
	delete(got, "result_traceback")
	require.Equal(t, want, got)
}

// Each broken stream gives an error of the right class, and nothing lands
// outside dest.
func TestHostileFraming(t *testing.T) {
	zipBytes := rsZip(t, []rsEntry{{name: "f", data: "hello"}})
	b64 := base64.StdEncoding.EncodeToString(zipBytes)
	head := fmt.Sprintf("{\"zipfile\": %d}\n", len(zipBytes))
	cases := []struct {
		name    string
		in      string
		framing bool // else extract
		is      error
	}{
		{"garbage line", "garbage\n", true, runnerstream.ErrNotObject},
		{"JSON but not an object", "[\"kwargs\"]\n", true, runnerstream.ErrNotObject},
		{"null", "null\n", true, runnerstream.ErrNotObject},
		{"over-long line", `{"event": "` + strings.Repeat("x", 300) + "\"}\n", true, runnerstream.ErrLineTooLong},
		{"over-long line without newline", strings.Repeat("x", 300), true, runnerstream.ErrLineTooLong},
		{"truncated base64", head + b64[:len(b64)-6], false, runnerstream.ErrTruncated},
		{"bad base64", head + strings.Repeat("*", len(b64)) + "{\"eof\": true}\n", false, runnerstream.ErrBadBase64},
		{"short padding", "{\"zipfile\": 5}\nQQ==QQ==" + "{\"eof\": true}\n", false, runnerstream.ErrBadBase64},
		{"bad zip", "{\"zipfile\": 12}\n" + base64.StdEncoding.EncodeToString([]byte("PK\x03\x04 not a zip")) + "{\"eof\": true}\n", false, runnerstream.ErrBadZip},
		{"empty zip", "{\"zipfile\": 0}\n{\"eof\": true}\n", false, runnerstream.ErrBadZip},
		{"negative size", "{\"zipfile\": -4}\n", false, runnerstream.ErrBadHeader},
		{"string size", "{\"zipfile\": \"12\"}\n", false, runnerstream.ErrBadHeader},
		{"fractional size", "{\"zipfile\": 1.5}\n", false, runnerstream.ErrBadHeader},
		{"size over the limit", "{\"zipfile\": 1000001}\n", false, runnerstream.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base, dest, _ := rsSandbox(t)
			r := runnerstream.NewReader(strings.NewReader(c.in), runnerstream.Limits{MaxLine: 200, MaxZip: 1000000})
			m, err := r.Next()
			if err == nil {
				require.Equal(t, runnerstream.KindZip, m.Kind)
				err = r.Unzip(dest)
			}
			require.ErrorIs(t, err, c.is)
			var fe *runnerstream.FramingError
			var xe *runnerstream.ExtractError
			require.Equal(t, c.framing, errors.As(err, &fe), "%v", err)
			require.Equal(t, !c.framing, errors.As(err, &xe), "%v", err)
			rsRequireContained(t, base)
		})
	}
}

func TestZipMustBeConsumed(t *testing.T) {
	zipBytes := rsZip(t, []rsEntry{{name: "f", data: "hello"}})
	r := runnerstream.NewReader(bytes.NewReader(rsBlock(zipBytes)), runnerstream.Limits{})
	require.ErrorIs(t, r.Skip(), runnerstream.ErrNoZip)
	require.ErrorIs(t, r.Unzip(t.TempDir()), runnerstream.ErrNoZip)
	rsNextKind(t, r, runnerstream.KindZip)
	_, err := r.Next()
	require.ErrorIs(t, err, runnerstream.ErrZipPending)
	require.NoError(t, r.Skip())
	rsNextKind(t, r, runnerstream.KindEOF)
}

// ansible-runner's Base64IO drops whitespace inside the base64; so do we,
// without reading past the last character.
func TestBase64WithWhitespace(t *testing.T) {
	zipBytes := rsZip(t, []rsEntry{{name: "f", data: "hello"}})
	b64 := base64.StdEncoding.EncodeToString(zipBytes)
	in := fmt.Sprintf("{\"zipfile\": %d}\n%s\r\n %s{\"eof\": true}\n", len(zipBytes), b64[:10], b64[10:])
	r := runnerstream.NewReader(strings.NewReader(in), runnerstream.Limits{})
	rsNextKind(t, r, runnerstream.KindZip)
	dest := t.TempDir()
	require.NoError(t, r.Unzip(dest))
	rsNextKind(t, r, runnerstream.KindEOF)
	got, err := os.ReadFile(filepath.Join(dest, "f"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
}

// FuzzReader feeds arbitrary bytes to a Reader, unzipping or skipping
// every zip block: it must never panic nor write outside dest.
func FuzzReader(f *testing.F) {
	f.Add([]byte("{\"kwargs\": {}}\n{\"eof\": true}\n"))
	f.Add([]byte("{\"zipfile\": 5}\nQQ==QQ==\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base, dest, _ := rsSandbox(t)
		lim := runnerstream.Limits{MaxLine: 1 << 16, MaxZip: 1 << 20, MaxUnzipped: 1 << 20, MaxEntries: 64}
		r := runnerstream.NewReader(bytes.NewReader(data), lim)
		for i := range 16 {
			m, err := r.Next()
			if err != nil {
				break
			}
			if m.Kind == runnerstream.KindZip && i%2 == 0 {
				_ = r.Unzip(dest)
			} else if m.Kind == runnerstream.KindZip {
				_ = r.Skip()
			}
		}
		rsRequireContained(t, base)
	})
}
