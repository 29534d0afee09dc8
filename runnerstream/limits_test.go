package runnerstream

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultLimits(t *testing.T) {
	d := DefaultLimits()
	require.Equal(t, Limits{
		MaxLine: 64 << 20, MaxZip: 1 << 30, MaxUnzipped: 4 << 30, MaxEntries: 100000, MaxRatio: 200,
	}, d)
}

// A zero or negative field must not mean "no limit": it takes its
// default, in the Reader too.
func TestZeroLimitsTakeDefaults(t *testing.T) {
	require.Equal(t, DefaultLimits(), Limits{}.withDefaults())
	require.Equal(t, DefaultLimits(), Limits{MaxLine: -1, MaxZip: -1, MaxUnzipped: -1, MaxEntries: -1, MaxRatio: math.NaN()}.withDefaults())
	require.Equal(t, DefaultLimits(), NewReader(strings.NewReader(""), Limits{}).lim)
	partial := Limits{MaxLine: 10, MaxRatio: 3}.withDefaults()
	require.Equal(t, Limits{MaxLine: 10, MaxZip: 1 << 30, MaxUnzipped: 4 << 30, MaxEntries: 100000, MaxRatio: 3}, partial)
}

// Fields left zero take their default while the others stay as given.
func TestPartialLimits(t *testing.T) {
	line := `{"status": "` + strings.Repeat("a", 200) + `"}` + "\n"
	r := NewReader(strings.NewReader(line), Limits{MaxLine: 100})
	_, err := r.Next()
	var fe *FramingError
	require.True(t, errors.As(err, &fe), "%v", err)
	require.ErrorIs(t, err, ErrLineTooLong)

	r = NewReader(bytes.NewReader([]byte(`{"zipfile": 2000}`+"\n")), Limits{MaxZip: 1000})
	_, err = r.Next()
	require.ErrorIs(t, err, ErrTooLarge)
}

// rsRepeat is an endless reader of one byte.
type rsRepeat byte

func (b rsRepeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// The bytes actually decompressed are counted: a zip whose sizes got past
// the checks of its headers is still stopped at MaxUnzipped.
func TestUnzipCounterStopsAtTotal(t *testing.T) {
	x := &unzipper{lim: Limits{MaxUnzipped: 100 << 10, MaxRatio: 1e9}.withDefaults()}
	e := &unzipEntry{f: &zip.File{FileHeader: zip.FileHeader{CompressedSize64: 10, UncompressedSize64: 10}}}
	var out bytes.Buffer
	_, err := io.Copy(&out, &unzipCounter{r: rsRepeat('a'), x: x, e: e})
	require.ErrorIs(t, err, ErrTooLarge)
	require.LessOrEqual(t, out.Len(), 100<<10, "bytes over the limit were written")
}

// Before archive/zip parses a central directory into memory, the header
// signatures are counted.
func TestUnzipCountEntries(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := range 10 {
		_, err := zw.Create(string(rune('a' + i)))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	r := bytes.NewReader(b.Bytes())
	require.ErrorIs(t, unzipCountEntries(r, r.Size(), 9), ErrTooManyEntries)
	require.NoError(t, unzipCountEntries(r, r.Size(), 10))
}
