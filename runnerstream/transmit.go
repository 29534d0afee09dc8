package runnerstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Transmit writes the stream of ansible-runner's transmit stage to out: the
// run arguments kw, the private data directory dir (its artifacts and
// daemon.log left out: the worker makes its own), and the end.
func Transmit(ctx context.Context, out io.Writer, dir string, kw Kwargs) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := NewWriter(out)
	if err := w.JSON(map[string]any{"kwargs": kw}); err != nil {
		return fmt.Errorf("transmit: %w", err)
	}
	if err := w.ZipDir(dir, ZipOptions{Exclude: NotShipped}); err != nil {
		return fmt.Errorf("transmit %s: %w", dir, err)
	}
	if err := w.EOF(); err != nil {
		return fmt.Errorf("transmit: %w", err)
	}
	return nil
}

// NotShipped reports whether the file at rel, relative to a private data
// directory, is left out of a shipped job: the artifacts of earlier runs,
// which ansible-runner would ship too, and the files of a run (its log,
// its pid), which a worker makes its own.
func NotShipped(rel string) bool {
	rel = filepath.ToSlash(rel)
	return rel == "artifacts" || strings.HasPrefix(rel, "artifacts/") || rel == "daemon.log" || rel == "pid"
}

// NewIdent returns a random run identifier: a UUID in 32 hexadecimal
// digits, as ansible-runner's CLI makes them.
func NewIdent() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}
