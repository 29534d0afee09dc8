package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/metrics"
	"github.com/ansible-worker/ansible-worker/web"
	"github.com/ansible-worker/ansible-worker/worker"
)

// serveMetrics serves /metrics, /healthz, /readyz and the live page (/) on
// worker.http_listen until ctx ends. Ready means: the worker listens for and pulls tasks,
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
	log = log.With(componentKey, config.LogWorker)
	page, err := livePage(ctx, cfg, nc, log)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	health := m.Handler(ready)
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		mux.Handle(path, health)
	}
	mux.Handle("/", page)
	return metrics.Serve(ctx, cfg.Worker.HTTPListen, mux, log)
}

// livePage is the group's live page (package web), read from the status
// bucket and the events stream; its event streams end with ctx.
func livePage(ctx context.Context, cfg *config.Config, nc *nats.Conn, log *slog.Logger) (http.Handler, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("live page: %w", err)
	}
	names := jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: cfg.Worker.GroupName}
	views, err := jsbridge.NewTaskViews(ctx, js, names)
	if err != nil {
		return nil, fmt.Errorf("live page: %w", err)
	}
	return web.New(ctx, views, web.Options{Group: names.Group, PlaybookDir: cfg.Worker.PlaybookDirectory, Log: log})
}
