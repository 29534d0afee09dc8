package test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
)

// ptyRun is the binary on a pseudo-terminal: what the terminal shows is
// read into screen.
type ptyRun struct {
	cmd    *exec.Cmd
	term   *os.File // the terminal's master side
	screen *syncBuffer
	done   chan struct{} // closed once the command has exited and the terminal is read
	code   int
}

// startPTY runs the binary with args on a pseudo-terminal of cols columns;
// stdout goes to out instead when out is not nil.
func startPTY(t testing.TB, cols uint16, out io.Writer, args ...string) *ptyRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	r := &ptyRun{cmd: exec.CommandContext(ctx, binary, args...), screen: &syncBuffer{}, done: make(chan struct{})}
	r.cmd.Stdout = out
	f, err := pty.StartWithSize(r.cmd, &pty.Winsize{Cols: cols, Rows: 24})
	require.NoError(t, err)
	r.term = f
	read := make(chan struct{})
	go func() { _, _ = io.Copy(r.screen, f); close(read) }() // ends with EIO once the command is gone
	go func() {
		err := r.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		}
		<-read
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		_ = f.Close()
	})
	return r
}

// wait waits for the command to exit and returns its exit code (-1 when a
// signal ended it).
func (r *ptyRun) wait(t testing.TB, total time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(total):
		t.Fatalf("still running after %s; the terminal shows:\n%q", total, r.screen.String())
	}
	return r.code
}

// waitFor waits until the terminal shows s.
func (r *ptyRun) waitFor(t testing.TB, total time.Duration, s string) {
	t.Helper()
	checkFor(t, total, 50*time.Millisecond, func() error {
		if !strings.Contains(r.screen.String(), s) {
			return errors.New("the terminal does not show " + s + " yet: " + r.screen.String())
		}
		return nil
	})
}

// progressLines are the progress lines drawn on screen, in order: what
// follows each "\r\033[K" up to the next carriage return, when it starts
// with the task's [state] (after the last clear comes the summary).
func progressLines(screen string) []string {
	var lines []string
	for _, part := range strings.Split(screen, "\r\x1b[K")[1:] {
		if line, _, _ := strings.Cut(part, "\r"); strings.HasPrefix(line, "[") {
			lines = append(lines, line)
		}
	}
	return lines
}

// With `submit --wait | tee log` the output goes to a pipe and only stderr
// is the terminal: a progress line there would glue itself into what tee
// writes to the same terminal, so none is drawn.
func TestProgressLineOnlyOnTheOutputsTerminal(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})

	var out syncBuffer
	r := startPTY(t, 100, &out, "submit", "-s", ns.url, "--wait", "--task-id", "tee-1", "-p", "steps.yml",
		"-i", "inventory/hosts", "-e", "pause=2")
	require.Equal(t, 0, r.wait(t, time.Minute), r.screen.String())
	require.Contains(t, out.String(), "TASK [Step three]", "the output goes to the pipe")
	require.Empty(t, progressLines(r.screen.String()), "no progress line on a terminal the output does not go to")
	require.Contains(t, r.screen.String(), "task tee-1 success", "the summary still goes to stderr")
}

var progressCounts = regexp.MustCompile(`ok=(\d+)`)

// A long task name is cut to the terminal's width, which the line follows
// when the window is resized; the counts follow the live events, not the
// status stored every second.
func TestProgressLineWidthAndLiveCounts(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	startWorker(t, ns.url, workerOpts{})

	r := startPTY(t, 60, nil, "submit", "-s", ns.url, "--wait", "--task-id", "narrow-1", "-p", "longname.yml",
		"-i", "inventory/hosts", "-e", "pause=4")
	r.waitFor(t, 30*time.Second, "task: Wait for")
	require.NoError(t, pty.Setsize(r.term, &pty.Winsize{Cols: 40, Rows: 24}))
	resized := len(r.screen.String())
	require.Equal(t, 0, r.wait(t, time.Minute), r.screen.String())
	screen := r.screen.String()
	require.Contains(t, screen, "task narrow-1 success")

	for _, l := range progressLines(screen) {
		require.Less(t, utf8.RuneCountInString(l), 60, "a line that wraps leaves a stale copy: %q", l)
	}
	after := progressLines(screen[resized:])
	require.NotEmpty(t, after)
	last := after[len(after)-1]
	require.Less(t, utf8.RuneCountInString(last), 40, "the line follows the resized window: %q", last)

	// Drawn right after the output of the second task's start, the line
	// already counts the first task's result.
	_, rest, ok := strings.Cut(screen, "TASK [Wait for")
	require.True(t, ok, screen)
	lines := progressLines(rest)
	require.NotEmpty(t, lines)
	m := progressCounts.FindStringSubmatch(lines[0])
	require.NotNil(t, m, lines[0])
	require.Equal(t, "1", m[1], "counts as the output shows them: %q", lines[0])
}
