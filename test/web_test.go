package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromium is Debian's Chromium, which scripts/deps.sh installs.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-headless-shell", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run scripts/deps.sh (Debian's package chromium)")
	return ""
}

// newBrowser starts a headless Chromium for t and returns the context of
// its first tab. Whatever breaks the page in any of its tabs, a JavaScript
// exception or a refusal by the Content-Security-Policy, is written to
// problems.
func newBrowser(t testing.TB) (tab context.Context, problems *syncBuffer) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	problems = &syncBuffer{}
	tab, cancel := chromedp.NewContext(alloc, chromedp.WithListener(pageProblems(problems)))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(tab), "start chromium")
	return tab, problems
}

// newTab opens another tab of the browser of tab.
func newTab(t testing.TB, tab context.Context, problems *syncBuffer) context.Context {
	t.Helper()
	other, cancel := chromedp.NewContext(tab, chromedp.WithListener(pageProblems(problems)))
	t.Cleanup(cancel)
	return other
}

// pageProblems writes the exceptions and security messages of a tab to w.
func pageProblems(w *syncBuffer) func(ev any) {
	return func(ev any) {
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			d := ev.ExceptionDetails
			if d.Exception != nil {
				fmt.Fprintf(w, "exception: %s\n", d.Exception.Description)
			} else {
				fmt.Fprintf(w, "exception: %s\n", d.Text)
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Source == cdplog.EntrySourceSecurity || ev.Entry.Source == cdplog.EntrySourceJavascript {
				fmt.Fprintf(w, "%s %s: %s\n", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text)
			}
		}
	}
}

// poll waits until the JavaScript expression is truthy and returns it.
func poll[T any](t testing.TB, tab context.Context, total time.Duration, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Poll[T](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(total)))
	require.NoError(t, err, "waiting for %s", expr)
	return v
}

// taskView is what a task's page shows: its state, connection and output.
type taskView struct {
	State  string `json:"state"`
	Conn   string `json:"conn"`
	Output string `json:"output"`
}

// viewWhen is a JavaScript expression that is the taskView of the task page
// once cond (over `v`) holds, false before.
func viewWhen(cond string) string {
	return `(v => (` + cond + `) && v)({
		state: document.getElementById('state').textContent,
		conn: document.getElementById('conn').textContent,
		output: document.getElementById('output').textContent})`
}

// The live page on worker.http_listen in a real browser: a submitted task
// appears in the list as queued or running and turns to success; its page
// streams the output while it runs and shows the final status; reloaded,
// the page rebuilds all of it from the address alone.
func TestLivePageInBrowser(t *testing.T) {
	t.Parallel()
	ns := startServer(t)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startWorker(t, ns.url, workerOpts{Extra: "http_listen: " + httpAddr})
	list, problems := newBrowser(t)
	require.NoError(t, chromedp.Do(list, chromedp.Navigate("http://"+httpAddr+"/")))
	poll[bool](t, list, 10*time.Second, `document.getElementById('conn').textContent === 'live'`)

	const id = "live-page-1"
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", id, "-p", "steps.yml", "-i", "inventory/hosts", "-e", "pause=4")
	require.Equal(t, 0, code, errOut)
	row := `document.querySelector('tr[data-task-id="` + id + `"]')`
	rowState := `(` + row + ` || {dataset: {}}).dataset.state`
	first := poll[string](t, list, 10*time.Second, `['queued', 'running'].includes(`+rowState+`) && `+rowState)
	t.Logf("the row appeared as %s", first)

	href, err := chromedp.Run(list, chromedp.AttributeValue(`tr[data-task-id="`+id+`"] a`, "href"))
	require.NoError(t, err)
	task := newTab(t, list, problems)
	require.NoError(t, chromedp.Do(task, chromedp.Navigate(href.Value)))
	running := poll[taskView](t, task, 15*time.Second, viewWhen(`v.output.includes('step one')`))
	require.Equal(t, "running", running.State, "the output streams while the task runs")
	require.NotContains(t, running.Output, "step three")

	done := poll[taskView](t, task, 20*time.Second, viewWhen(`v.state === 'success' && v.conn === 'ended'`))
	for _, line := range []string{"TASK [Step one]", "step one", "TASK [Step three]", "step three", "PLAY RECAP"} {
		require.Contains(t, done.Output, line)
	}
	require.NotContains(t, done.Output, "\x1b[", "no terminal escapes on the page")
	cells := poll[[]string](t, list, 10*time.Second, rowState+` === 'success' && Array.from(`+row+`.cells, c => c.textContent)`)
	require.Equal(t, []string{id, "success", "steps.yml"}, cells[:3], "task, state, playbook")
	require.Equal(t, "3", cells[3], "ok count")

	require.NoError(t, chromedp.Do(task, chromedp.Reload()))
	again := poll[taskView](t, task, 10*time.Second, viewWhen(`v.state === 'success' && v.conn === 'ended'`))
	require.Equal(t, done.Output, again.Output, "the reloaded page shows the whole output again")
	require.Empty(t, strings.TrimSpace(problems.String()), "the page ran without errors")
}
