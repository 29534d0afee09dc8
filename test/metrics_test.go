package test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// get returns the status code and body of url.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue is the value of the sample of /metrics whose name and labels
// match (a regular expression of the whole line up to the value).
func metricValue(t testing.TB, body, sample string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + sample + ` ([0-9.e+-]+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// worker.http_listen: /metrics shows the counters moving as tasks run,
// /healthz answers, and /readyz turns unready while the server is down and
// ready again once it is back.
func TestMetricsAndHealth(t *testing.T) {
	t.Parallel()
	store, ports := t.TempDir(), freePorts(t, 2)
	ns := startServerAt(t, store, ports[0])
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	w := startWorker(t, ns.url, workerOpts{Extra: "http_listen: " + httpAddr})
	c := connectClient(t, ns.url)
	base := "http://" + httpAddr

	code, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, body)
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, body)
	_, body = get(t, base+"/metrics")
	labels := fmt.Sprintf(`group="production",worker="%s"`, w.id)
	// Prometheus sorts the labels: a state or start comes between them.
	with := func(k, v string) string { return fmt.Sprintf(`group="production",%s="%s",worker="%s"`, k, v, w.id) }
	require.Equal(t, 0.0, metricValue(t, body, `ansible_worker_tasks_total\{`+with("state", "success")+`\}`), body)
	require.Equal(t, 1.0, metricValue(t, body, `ansible_worker_nats_connected\{`+labels+`\}`))

	for _, id := range []string{"m-ok", "m-fail"} {
		pb := map[string]string{"m-ok": "quick.yml", "m-fail": "fail.yml"}[id]
		_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", id, "-p", pb, "-i", "inventory/hosts")
		require.Equal(t, 0, code, errOut)
		c.waitFinal(t, "production", id, time.Minute)
	}
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		_, body = get(t, base+"/metrics")
		for sample, want := range map[string]float64{
			`ansible_worker_tasks_total\{` + with("state", "success") + `\}`: 1,
			`ansible_worker_tasks_total\{` + with("state", "failed") + `\}`:  1,
			`ansible_worker_task_duration_seconds_count\{` + labels + `\}`:   2,
			`ansible_worker_running_tasks\{` + labels + `\}`:                 0,
			`ansible_worker_queue_waiting_tasks\{` + labels + `\}`:           0,
		} {
			if got := metricValue(t, body, sample); got != want {
				return fmt.Errorf("%s = %v, want %v\n%s", sample, got, want, body)
			}
		}
		if metricValue(t, body, `ansible_worker_published_messages_total\{`+labels+`\}`) < 10 {
			return fmt.Errorf("events published not counted\n%s", body)
		}
		return nil
	})
	starts := metricValue(t, body, `ansible_worker_playbook_starts_total\{`+with("start", "warm")+`\}`) +
		metricValue(t, body, `ansible_worker_playbook_starts_total\{`+with("start", "cold")+`\}`)
	require.Equal(t, 2.0, starts, body)

	ns.stop()
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz with the server down: %d %s", code, body)
		}
		return nil
	})
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, "alive while NATS is away")
	_, body = get(t, base+"/metrics")
	require.Equal(t, 0.0, metricValue(t, body, `ansible_worker_nats_connected\{`+labels+`\}`))

	ns = startServerAt(t, store, ports[0])
	checkFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if code, body := get(t, base+"/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz after the server came back: %d %s", code, body)
		}
		return nil
	})
	_, errOut, code := runCLI(t, "submit", "-s", ns.url, "--task-id", "m-after", "-p", "quick.yml", "-i", "inventory/hosts")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, schemas.StateSuccess, c.waitFinal(t, "production", "m-after", time.Minute).State)
}
