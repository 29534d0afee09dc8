//go:build unix

package test

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// peakRSS follows a process's resident memory until stop is called and
// returns the largest value read, in bytes: its high-water mark (VmHWM)
// where /proc has one, else the largest VmRSS sampled every 20 ms (gVisor's
// /proc has no VmHWM). The kernel's ru_maxrss will not do: a child started
// from this large test process inherits the parent's peak at its exec.
func peakRSS(pid int) (stop func() int64) {
	var mu sync.Mutex
	var peak int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			if v := procMemory(pid); v > 0 {
				mu.Lock()
				peak = max(peak, v)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// procMemory is the larger of VmHWM and VmRSS of /proc/<pid>/status.
func procMemory(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	var v int64
	s := bufio.NewScanner(f)
	for s.Scan() {
		for _, key := range []string{"VmHWM:", "VmRSS:"} {
			if rest, ok := strings.CutPrefix(s.Text(), key); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				v = max(v, kb<<10)
			}
		}
	}
	return v
}

// bigPrivateDataDir writes a private data directory with size bytes of
// incompressible files besides the playbook.
func bigPrivateDataDir(t *testing.T, size int64) string {
	t.Helper()
	dir := privateDataDir(t, "quick.yml")
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	const files = 4
	for i := range files {
		f, err := os.Create(filepath.Join(dir, "project", "blob-"+strconv.Itoa(i)))
		require.NoError(t, err)
		for n := int64(0); n < size/files; n += int64(len(buf)) {
			_, _ = rng.Read(buf)
			_, err = f.Write(buf)
			require.NoError(t, err)
		}
		require.NoError(t, f.Close())
	}
	return dir
}

// A 200 MB private data directory goes through transmit | worker |
// process with the worker's resident memory staying under 64 MB.
func TestStreamLargeDirectoryMemory(t *testing.T) {
	t.Parallel()
	dir := bigPrivateDataDir(t, 200<<20)
	stream := filepath.Join(t.TempDir(), "transmit.bin")
	f, err := os.Create(stream)
	require.NoError(t, err)
	tr := exec.Command(binary, "transmit", dir, "-p", "quick.yml", "--ident", "big")
	tr.Stdout = f
	start := time.Now()
	require.NoError(t, tr.Run())
	require.NoError(t, f.Close())
	st, err := os.Stat(stream)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(200<<20), "the blobs do not compress")
	t.Logf("transmit: %d MB stream in %s", st.Size()>>20, time.Since(start).Round(time.Millisecond))

	in, err := os.Open(stream)
	require.NoError(t, err)
	defer in.Close()
	var out bytes.Buffer
	// /bin/true stands in for ansible-playbook: the figure is the worker's.
	cfg := filepath.Join(t.TempDir(), "config.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("worker:\n  ansible_playbook: /bin/true\n"), 0o600))
	w := exec.Command(binary, "worker", "-c", cfg)
	w.Stdin, w.Stdout = in, &out
	start = time.Now()
	require.NoError(t, w.Start())
	stop := peakRSS(w.Process.Pid)
	err = w.Wait()
	peak := stop()
	require.NoError(t, err, out.String())
	t.Logf("worker: peak RSS %.1f MB, %s", float64(peak)/(1<<20), time.Since(start).Round(time.Millisecond))
	require.Positive(t, peak)
	require.Less(t, peak, int64(64<<20), "the worker's peak resident memory")

	p := exec.Command(binary, "process", dir, "--ident", "big")
	p.Stdin = &out
	require.NoError(t, p.Run())
	b, err := os.ReadFile(filepath.Join(dir, "artifacts", "big", "status"))
	require.NoError(t, err)
	require.Equal(t, "successful", string(b))
}
