//go:build unix

package jsbridge

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// The child mode of TestJobObjectsMemoryBounded: which operation the
// re-executed test binary runs, and on what.
const (
	memChildMode = "JSBRIDGE_OBJECTS_MEMORY_CHILD" // "put", "get" or "idle"
	memChildURL  = "JSBRIDGE_OBJECTS_MEMORY_URL"
	memChildFile = "JSBRIDGE_OBJECTS_MEMORY_FILE"
)

const (
	memFileSize = 200 << 20 // the file moved through the bucket
	memMaxRSS   = 40 << 20  // what a process may peak at while moving it
	memTaskID   = "mem-1"
)

// Moving a 200 MB file into and out of the bucket keeps the process's
// memory bounded: each direction runs in a child process (this test binary
// re-executed) against a nats-server in yet another process, and the child
// reports its own peak resident memory (its mm's high-water mark, VmHWM,
// or sampled VmRSS where /proc has no VmHWM). The kernel's ru_maxrss would
// include this process's peak, which the child inherits at its exec.
func TestJobObjectsMemoryBounded(t *testing.T) {
	if mode := os.Getenv(memChildMode); mode != "" {
		runMemChild(t, mode)
		return
	}
	url := startServerProcess(t)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "job.zip"), filepath.Join(dir, "back.zip")
	want := writeRandomFile(t, src, memFileSize)

	idle := runMemChildProcess(t, "idle", url, "")
	t.Logf("idle child: peak RSS %.1f MB", mb(idle.rss))
	for _, c := range []struct{ mode, file string }{{"put", src}, {"get", dst}} {
		r := runMemChildProcess(t, c.mode, url, c.file)
		t.Logf("%s of %d MB: peak RSS %.1f MB (Go runtime %.1f MB), %.0f MB/s",
			c.mode, memFileSize>>20, mb(r.rss), mb(r.goSys), mb(memFileSize)/r.took.Seconds())
		peak, what := r.rss, "peak RSS"
		if raceEnabled() { // the detector's shadow memory is in the RSS
			peak, what = r.goSys, "memory the Go runtime obtained"
		}
		require.Less(t, peak, int64(memMaxRSS), "%s: %s %.1f MB; child:\n%s", c.mode, what, mb(peak), r.out)
	}
	require.Equal(t, want, fileSum(t, dst))
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	return ok && slices.Contains(bi.Settings, debug.BuildSetting{Key: "-race", Value: "true"})
}

// runMemChild is the child's side: one operation against the server, timed
// and reported on stdout with the runtime's view of memory, then exit.
func runMemChild(t *testing.T, mode string) {
	nc, err := nats.Connect(os.Getenv(memChildURL))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := OpenJobObjects(ctx, js, Names{Prefix: "ansible", Group: "mem"}, 1, time.Hour)
	require.NoError(t, err)
	stopPeak := selfPeak()
	start := time.Now()
	switch mode {
	case "put":
		require.NoError(t, objs.PutJob(ctx, memTaskID, os.Getenv(memChildFile)))
	case "get":
		require.NoError(t, objs.GetJob(ctx, memTaskID, os.Getenv(memChildFile), 0))
	case "idle":
	default:
		t.Fatalf("unknown child mode %q", mode)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms) // Sys only grows: a peak of the runtime's own
	took := time.Since(start)
	fmt.Printf("took=%s go-sys=%d rss=%d heap-sys=%d gcs=%d\n", took, ms.Sys, stopPeak(), ms.HeapSys, ms.NumGC)
}

// selfPeak samples this process's resident memory every 5 ms until stop
// is called, and returns the largest of VmHWM and the VmRSS samples.
func selfPeak() (stop func() int64) {
	var peak atomic.Int64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			b, _ := os.ReadFile("/proc/self/status")
			for _, line := range strings.Split(string(b), "\n") {
				k, v, _ := strings.Cut(line, ":")
				if k == "VmHWM" || k == "VmRSS" {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					if n := kb << 10; n > peak.Load() {
						peak.Store(n)
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() int64 { close(done); <-finished; return peak.Load() }
}

var memChildRE = regexp.MustCompile(`took=(\S+) go-sys=(\d+) rss=(\d+)`)

// memChildResult is what the parent learns of a child.
type memChildResult struct {
	rss   int64         // peak resident set, bytes
	goSys int64         // bytes the Go runtime obtained from the OS
	took  time.Duration // the operation alone
	out   []byte        // the child's output
}

// runMemChildProcess re-executes this test in child mode and returns what
// it measured.
func runMemChildProcess(t *testing.T, mode, url, file string) memChildResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	// The runtime's defaults are what is measured, whatever the caller's
	// GOGC or GOMEMLIMIT.
	cmd.Env = append(withoutEnv(os.Environ(), "GOGC", "GOMEMLIMIT"),
		memChildMode+"="+mode, memChildURL+"="+url, memChildFile+"="+file)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s child:\n%s", mode, out)
	r := memChildResult{out: out}
	m := memChildRE.FindSubmatch(out)
	require.NotNil(t, m, "%s child:\n%s", mode, out)
	r.took, err = time.ParseDuration(string(m[1]))
	require.NoError(t, err)
	r.goSys, err = strconv.ParseInt(string(m[2]), 10, 64)
	require.NoError(t, err)
	r.rss, err = strconv.ParseInt(string(m[3]), 10, 64)
	require.NoError(t, err)
	require.Positive(t, r.rss, "%s child read no memory figure:\n%s", mode, out)
	return r
}

func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

// writeRandomFile writes size incompressible bytes to path, a MB at a time,
// and returns their SHA-256.
func writeRandomFile(t *testing.T, path string, size int) [32]byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(t, err)
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8([32]byte{42}), int64(size))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return [32]byte(h.Sum(nil))
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return [32]byte(h.Sum(nil))
}

// startServerProcess runs a JetStream nats-server in its own process on a
// free port of 127.0.0.1 and returns its URL once it accepts connections.
// An installed nats-server is used; else one is built from the module.
func startServerProcess(t *testing.T) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(natsServerBinary(t), "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"-js", "-sd", t.TempDir())
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // its store is a temporary directory
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		nc, err := nats.Connect(url)
		if err != nil {
			return false
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx) // JetStream is up, not just the port
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "nats-server at %s not ready", url)
	return url
}

func natsServerBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("nats-server"); err == nil {
		return bin
	}
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "neither nats-server nor go found")
	bin := filepath.Join(t.TempDir(), "nats-server")
	out, err := exec.Command(gobin, "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	require.NoError(t, err, "build nats-server:\n%s", out)
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
