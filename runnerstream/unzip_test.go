//go:build unix

package runnerstream_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

// rsEntry is one entry of a hand-made zip. mode is the unix st_mode
// (type and permission bits); 0 means a regular 0644 file.
type rsEntry struct {
	name string
	mode uint32
	data string
}

const (
	rsLink = 0o120777
	rsDir  = 0o040755
	rsFIFO = 0o010644
)

// rsZip builds a zip the way Python's zipfile does: unix creator, mode in
// the high 16 bits of the external attributes, deflated data.
func rsZip(t testing.TB, entries []rsEntry) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o100644
		}
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, CreatorVersion: 3 << 8, ExternalAttrs: mode << 16}
		w, err := zw.CreateHeader(h)
		require.NoError(t, err)
		_, err = w.Write([]byte(e.data))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return b.Bytes()
}

// rsUnzip frames the zip mk makes (it may aim at the canary) as a stream
// and extracts it into a sandbox's dest; prepare, when set, may put
// things in dest first.
func rsUnzip(t *testing.T, mk func(canary string) []byte, lim runnerstream.Limits, prepare func(dest string) error) (string, error) {
	base, dest, canary := rsSandbox(t)
	zipBytes := mk(canary)
	if prepare != nil {
		require.NoError(t, os.Mkdir(dest, 0o755))
		require.NoError(t, prepare(dest))
	}
	r := runnerstream.NewReader(bytes.NewReader(rsBlock(zipBytes)), lim)
	rsNextKind(t, r, runnerstream.KindZip)
	err := r.Unzip(dest)
	rsRequireContained(t, base)
	if err == nil {
		rsNextKind(t, r, runnerstream.KindEOF)
	}
	return dest, err
}

// rsHostile is a zip that must be refused.
type rsHostile struct {
	name    string
	entries func(canary string) []rsEntry
	lim     runnerstream.Limits
	prepare func(dest string) error
	is      error
	entry   string // the entry the error must name
	partial bool   // refused while writing, not while checking
}

func rsEvilLink(dest string) error { return os.Symlink("../canary", filepath.Join(dest, "evil")) }

// rsHostileNames are entries whose names leave dest.
func rsHostileNames() []rsHostile {
	return []rsHostile{
		{name: "dot-dot entry", is: runnerstream.ErrUnsafePath, entry: "../canary/x",
			entries: func(string) []rsEntry { return []rsEntry{{name: "ok"}, {name: "../canary/x", data: "x"}} }},
		{name: "dot-dot inside", is: runnerstream.ErrUnsafePath, entry: "a/../../canary/x",
			entries: func(string) []rsEntry { return []rsEntry{{name: "a/../../canary/x", data: "x"}} }},
		{name: "absolute entry", is: runnerstream.ErrUnsafePath,
			entries: func(c string) []rsEntry { return []rsEntry{{name: c + "/x", data: "x"}} }},
		{name: "backslash", is: runnerstream.ErrUnsafePath, entry: `..\canary\x`,
			entries: func(string) []rsEntry { return []rsEntry{{name: `..\canary\x`, data: "x"}} }},
		{name: "drive letter", is: runnerstream.ErrUnsafePath, entry: "C:x",
			entries: func(string) []rsEntry { return []rsEntry{{name: "C:x", data: "x"}} }},
		{name: "NUL", is: runnerstream.ErrUnsafePath, entry: "a\x00b",
			entries: func(string) []rsEntry { return []rsEntry{{name: "a\x00b", data: "x"}} }},
		{name: "empty name", is: runnerstream.ErrUnsafePath, entry: "/",
			entries: func(string) []rsEntry { return []rsEntry{{name: "/", mode: rsDir}} }},
		{name: "entry below a file", is: runnerstream.ErrUnsafePath, entry: "f/x",
			entries: func(string) []rsEntry { return []rsEntry{{name: "f/x", data: "x"}, {name: "f", data: "x"}} }},
		{name: "duplicate entry", is: runnerstream.ErrDuplicate, entry: "a",
			entries: func(string) []rsEntry {
				return []rsEntry{{name: "a/", mode: rsDir}, {name: "a", mode: rsLink, data: "/"}}
			}},
		{name: "file through a symlink already in dest", entry: "evil/x", partial: true, prepare: rsEvilLink,
			entries: func(string) []rsEntry { return []rsEntry{{name: "evil/x", data: "x"}} }},
	}
}

// rsHostileLinks are symlinks that lead outside dest, or writes through
// them.
func rsHostileLinks() []rsHostile {
	link := func(name, target string) rsEntry { return rsEntry{name: name, mode: rsLink, data: target} }
	return []rsHostile{
		{name: "symlink absolute", is: runnerstream.ErrUnsafeLink, entry: "l",
			entries: func(c string) []rsEntry { return []rsEntry{link("l", c)} }},
		{name: "symlink relative outside", is: runnerstream.ErrUnsafeLink, entry: "d/l",
			entries: func(string) []rsEntry { return []rsEntry{{name: "d/", mode: rsDir}, link("d/l", "../../canary")} }},
		// "b/../canary" is "canary" to path.Clean, "../canary" to the kernel.
		{name: "symlink through a symlink to the root", is: runnerstream.ErrUnsafeLink, entry: "a",
			entries: func(string) []rsEntry { return []rsEntry{link("b", "."), link("a", "b/../canary")} }},
		{name: "symlink loop", is: runnerstream.ErrUnsafeLink, entry: "a",
			entries: func(string) []rsEntry { return []rsEntry{link("a", "b"), link("b", "a"), link("c", "a/x")} }},
		{name: "symlink then write through it", is: runnerstream.ErrUnsafePath, entry: "a/passwd",
			entries: func(c string) []rsEntry {
				return []rsEntry{link("a", c), {name: "a/passwd", data: "root::0:0::/:/bin/sh"}}
			}},
		{name: "inside symlink then write through it", is: runnerstream.ErrUnsafePath, entry: "a/x",
			entries: func(string) []rsEntry { return []rsEntry{{name: "sub/", mode: rsDir}, link("a", "sub"), {name: "a/x"}} }},
		{name: "symlink through a symlink already in dest", is: runnerstream.ErrUnsafeLink, entry: "l", prepare: rsEvilLink,
			entries: func(string) []rsEntry { return []rsEntry{link("l", "evil/x")} }},
	}
}

// rsHostileSizes are zip bombs and zips over the limits.
func rsHostileSizes() []rsHostile {
	zeros := strings.Repeat("\x00", 4<<20)
	return []rsHostile{
		{name: "zip bomb ratio", is: runnerstream.ErrRatio, entry: "zeros", partial: true,
			entries: func(string) []rsEntry { return []rsEntry{{name: "zeros", data: zeros}} }},
		{name: "zip bomb total", is: runnerstream.ErrTooLarge, lim: runnerstream.Limits{MaxUnzipped: 1 << 20}, entry: "b",
			entries: func(string) []rsEntry {
				return []rsEntry{{name: "a", data: zeros[:600<<10]}, {name: "b", data: zeros[:600<<10]}}
			}},
		{name: "symlink maze", is: runnerstream.ErrUnsafeLink, entries: func(string) []rsEntry {
			// Two chains of 40 links, each target 2000 components long:
			// checking them all walks over 3 million components.
			var maze []rsEntry
			for c := range 2 {
				for i := range 40 {
					next := fmt.Sprintf("c%d-%d", c, i+1)
					maze = append(maze, rsEntry{name: fmt.Sprintf("c%d-%d", c, i), mode: rsLink, data: strings.Repeat("./", 1995) + next})
				}
			}
			return maze
		}},
		{name: "too many entries", is: runnerstream.ErrTooManyEntries, lim: runnerstream.Limits{MaxEntries: 3},
			entries: func(string) []rsEntry { return []rsEntry{{name: "a"}, {name: "b"}, {name: "c"}, {name: "d"}} }},
	}
}

// Every hostile zip is refused, with an error naming the entry, and
// writes nothing outside dest.
func TestHostileZips(t *testing.T) {
	cases := append(append(rsHostileNames(), rsHostileLinks()...), rsHostileSizes()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mk := func(canary string) []byte { return rsZip(t, c.entries(canary)) }
			dest, err := rsUnzip(t, mk, c.lim, c.prepare)
			require.Error(t, err)
			t.Log(err)
			if !c.partial { // the whole zip is checked before anything is written
				written, _ := os.ReadDir(dest)
				for _, w := range written {
					require.Equal(t, "evil", w.Name(), "written before the zip was refused")
				}
			}
			if c.is != nil {
				require.ErrorIs(t, err, c.is)
			}
			var xe *runnerstream.ExtractError
			require.ErrorAs(t, err, &xe)
			if c.entry != "" {
				require.Equal(t, c.entry, xe.Entry)
			}
			require.Equal(t, map[string]any{"status": "error", "job_explanation": "Failed to extract private data directory on worker.",
				"result_traceback": err.Error()}, runnerstream.ErrorStatus(err, runnerstream.SideWorker))
		})
	}
}

// A header that understates the size is not believed: the bytes actually
// decompressed are what count.
func TestLyingSizes(t *testing.T) {
	data := make([]byte, 64<<10)
	_, _ = rand.Read(data)
	var comp bytes.Buffer
	fw, err := flate.NewWriter(&comp, flate.BestSpeed)
	require.NoError(t, err)
	_, _ = fw.Write(data)
	require.NoError(t, fw.Close())

	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "big", Method: zip.Deflate, CreatorVersion: 3 << 8, ExternalAttrs: 0o100644 << 16,
		CRC32: crc32.ChecksumIEEE(data), CompressedSize64: uint64(comp.Len()), UncompressedSize64: 10,
	})
	require.NoError(t, err)
	_, _ = w.Write(comp.Bytes())
	require.NoError(t, zw.Close())

	dest, err := rsUnzip(t, rsBytes(b.Bytes()), runnerstream.Limits{MaxUnzipped: 1000}, nil)
	require.ErrorIs(t, err, runnerstream.ErrBadZip)
	fi, err := os.Stat(filepath.Join(dest, "big"))
	if err == nil {
		require.LessOrEqual(t, fi.Size(), int64(1000))
	}
}

// Entries that are neither files, directories nor symlinks are skipped;
// what is in the way of an entry is replaced, never followed.
func TestExtractReplacesWhatIsInTheWay(t *testing.T) {
	entries := []rsEntry{{name: "fifo", mode: rsFIFO}, {name: "f", data: "new"}, {name: "l", mode: rsLink, data: "f"}}
	dest, err := rsUnzip(t, rsBytes(rsZip(t, entries)), runnerstream.Limits{}, func(dest string) error {
		// f is a symlink to the canary: writing f must not write there.
		if err := os.Symlink("../canary/f", filepath.Join(dest, "f")); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dest, "l"), []byte("old"), 0o644)
	})
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dest, "f"))
	require.NoError(t, err)
	require.Equal(t, "new", string(got))
	rsRequireMode(t, filepath.Join(dest, "f"), 0o644)
	target, err := os.Readlink(filepath.Join(dest, "l"))
	require.NoError(t, err)
	require.Equal(t, "f", target)
	_, err = os.Lstat(filepath.Join(dest, "fifo"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// Permission bits are restored without setuid, setgid or sticky, and a
// read-only directory is still filled.
func TestExtractModes(t *testing.T) {
	entries := []rsEntry{
		{name: "ro/", mode: 0o040555}, {name: "ro/x", mode: 0o104755, data: "#!/bin/sh\n"},
		{name: "sticky/", mode: 0o041777}, {name: "plain", data: "p"},
	}
	dest, err := rsUnzip(t, rsBytes(rsZip(t, entries)), runnerstream.Limits{}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dest, "ro"), 0o755) })
	rsRequireMode(t, filepath.Join(dest, "ro"), os.ModeDir|0o555)
	rsRequireMode(t, filepath.Join(dest, "ro/x"), 0o755)
	rsRequireMode(t, filepath.Join(dest, "sticky"), os.ModeDir|0o777)
	rsRequireMode(t, filepath.Join(dest, "plain"), 0o644)
}

// rsBytes is a zip maker for a zip that does not depend on the sandbox.
func rsBytes(b []byte) func(string) []byte { return func(string) []byte { return b } }
