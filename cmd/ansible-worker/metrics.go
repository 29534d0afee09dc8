package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/metrics"
	"github.com/ansible-worker/ansible-worker/worker"
)

// serveMetrics serves /metrics, /healthz and /readyz on worker.http_listen
// until ctx ends. Ready means: the worker listens for and pulls tasks,
// its NATS connection is up, and it is not stopping (run has not ended).
func serveMetrics(ctx, run context.Context, cfg *config.Config, nc *nats.Conn, w *worker.Worker, ports worker.Ports, m *metrics.Metrics, log *slog.Logger) error {
	m.GaugeFunc("queue_waiting_tasks", "Tasks of the group waiting in the queue (read when scraped).", func() float64 {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		n, err := ports.Source.Waiting(qctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	m.GaugeFunc("nats_connected", "1 while the NATS connection is up.", func() float64 {
		if nc.IsConnected() {
			return 1
		}
		return 0
	})
	ready := func() error {
		select {
		case <-w.Ready():
		default:
			return errors.New("starting")
		}
		switch {
		case run.Err() != nil:
			return errors.New("stopping")
		case !nc.IsConnected():
			return errors.New("NATS connection " + nc.Status().String())
		}
		return nil
	}
	return metrics.Serve(ctx, cfg.Worker.HTTPListen, m.Handler(ready), log.With(componentKey, config.LogWorker))
}
