package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/schemas"
)

func scrape(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// The observer methods move the metrics a dashboard reads; /readyz says
// why it is not ready.
func TestMetricsMove(t *testing.T) {
	m := New("g", "w1", "1.2.3")
	m.GaugeFunc("queue_waiting_tasks", "waiting", func() float64 { return 7 })
	var ready error = errors.New("NATS connection RECONNECTING")
	h := m.Handler(func() error { return ready })
	m.RunStarted()
	_, body := scrape(t, h, "/metrics")
	require.Contains(t, body, `ansible_worker_running_tasks{group="g",worker="w1"} 1`)
	m.RunEnded(true)
	m.TaskEnded(schemas.StateSuccess, 1500*time.Millisecond)
	m.Published(12)
	m.Retried()
	m.Dropped()
	_, body = scrape(t, h, "/metrics")
	for _, line := range []string{
		`ansible_worker_running_tasks{group="g",worker="w1"} 0`,
		`ansible_worker_tasks_total{group="g",state="success",worker="w1"} 1`,
		`ansible_worker_tasks_total{group="g",state="timeout",worker="w1"} 0`,
		`ansible_worker_task_duration_seconds_bucket{group="g",worker="w1",le="2.5"} 1`,
		`ansible_worker_playbook_starts_total{group="g",start="warm",worker="w1"} 1`,
		`ansible_worker_published_messages_total{group="g",worker="w1"} 12`,
		`ansible_worker_publish_retries_total{group="g",worker="w1"} 1`,
		`ansible_worker_publish_errors_total{group="g",worker="w1"} 1`,
		`ansible_worker_queue_waiting_tasks{group="g",worker="w1"} 7`,
		`ansible_worker_info{group="g",version="1.2.3",worker="w1"} 1`,
	} {
		require.Contains(t, body, line+"\n")
	}
	code, body := scrape(t, h, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "NATS connection RECONNECTING")
	ready = nil
	code, _ = scrape(t, h, "/readyz")
	require.Equal(t, http.StatusOK, code)
	code, _ = scrape(t, h, "/healthz")
	require.Equal(t, http.StatusOK, code)
}

// Every metric the example Grafana dashboard queries is one the worker
// exports.
func TestGrafanaDashboardUsesExportedMetrics(t *testing.T) {
	m := New("g", "w1", "v")
	m.GaugeFunc("queue_waiting_tasks", "", func() float64 { return 0 })
	m.GaugeFunc("nats_connected", "", func() float64 { return 1 })
	_, body := scrape(t, m.Handler(func() error { return nil }), "/metrics")
	dash, err := os.ReadFile("../examples/grafana/ansible-worker.json")
	require.NoError(t, err)
	names := regexp.MustCompile(`ansible_worker_[a-z_]+`).FindAllString(string(dash), -1)
	require.NotEmpty(t, names)
	for _, n := range names {
		require.True(t, strings.Contains(body, "\n"+n+"{") || strings.Contains(body, "\n"+n+" "), "%s is not exported", n)
	}
}
