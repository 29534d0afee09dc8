// Package metrics is the worker's view for operators: Prometheus metrics
// (with the standard client library) and the health endpoints, served on
// worker.http_listen.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Metrics holds the worker's metrics. It implements worker.Observer and
// jsbridge.PublishObserver; its zero value is not usable (see New).
type Metrics struct {
	reg        *prometheus.Registry
	tasks      *prometheus.CounterVec
	duration   prometheus.Histogram
	running    prometheus.Gauge
	starts     *prometheus.CounterVec
	published  prometheus.Counter
	retries    prometheus.Counter
	dropped    prometheus.Counter
	infoLabels prometheus.Labels
}

// New makes the metrics of one worker of group, labelled with its id, in a
// registry of their own (with the Go and process collectors).
func New(group, workerID, version string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	labels := prometheus.Labels{"group": group, "worker": workerID}
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "ansible_worker", Name: name, Help: help, ConstLabels: labels}
	}
	m := &Metrics{
		reg: reg,
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts(f("tasks_total",
			"Tasks that reached a final state on this worker, by state.")), []string{"state"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ansible_worker",
			Name: "task_duration_seconds", Help: "Time from a task's start to its final state.", ConstLabels: labels,
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}}),
		running: prometheus.NewGauge(prometheus.GaugeOpts(f("running_tasks", "Playbook runs going on now."))),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts(f("playbook_starts_total",
			"Playbook runs by how they started: warm (forked from the warm process) or cold.")), []string{"start"}),
		published: prometheus.NewCounter(prometheus.CounterOpts(f("published_messages_total",
			"Events and runner statuses stored in JetStream."))),
		retries: prometheus.NewCounter(prometheus.CounterOpts(f("publish_retries_total",
			"Publish attempts that failed and were tried again."))),
		dropped: prometheus.NewCounter(prometheus.CounterOpts(f("publish_errors_total",
			"Messages the server refused for good (dropped)."))),
		infoLabels: labels,
	}
	reg.MustRegister(m.tasks, m.duration, m.running, m.starts, m.published, m.retries, m.dropped)
	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ansible_worker", Name: "info",
		Help: "The worker's version.", ConstLabels: prometheus.Labels{"group": group, "worker": workerID, "version": version}})
	info.Set(1)
	reg.MustRegister(info)
	for _, s := range []schemas.State{schemas.StateSuccess, schemas.StateFailed, schemas.StateCancelled, schemas.StateTimeout} {
		m.tasks.WithLabelValues(string(s)) // every state shows, at 0
	}
	m.starts.WithLabelValues("warm")
	m.starts.WithLabelValues("cold")
	return m
}

// GaugeFunc adds a gauge read when scraped: the queue backlog, the NATS
// connection state.
func (m *Metrics) GaugeFunc(name, help string, read func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ansible_worker", Name: name,
		Help: help, ConstLabels: m.infoLabels}, read))
}

// RunStarted counts a playbook run going on.
func (m *Metrics) RunStarted() { m.running.Inc() }

// RunEnded counts the run's end and how it started.
func (m *Metrics) RunEnded(warm bool) {
	m.running.Dec()
	m.starts.WithLabelValues(map[bool]string{true: "warm", false: "cold"}[warm]).Inc()
}

// TaskEnded counts a final state and its task's duration.
func (m *Metrics) TaskEnded(state schemas.State, d time.Duration) {
	m.tasks.WithLabelValues(string(state)).Inc()
	m.duration.Observe(d.Seconds())
}

// Published counts stored messages.
func (m *Metrics) Published(n int) { m.published.Add(float64(n)) }

// Retried counts a publish tried again.
func (m *Metrics) Retried() { m.retries.Inc() }

// Dropped counts a message the server refused.
func (m *Metrics) Dropped() { m.dropped.Inc() }

// Handler serves /metrics, /healthz (200 while the process serves) and
// /readyz (200 while ready returns nil, else 503 with its error).
func (m *Metrics) Handler(ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Serve listens on addr and serves h until ctx ends. The listener is open
// when it returns without an error.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("worker.http_listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	log.Info("metrics and health endpoints listening", "addr", ln.Addr().String())
	return nil
}
