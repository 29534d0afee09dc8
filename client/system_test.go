package client_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/worker"
)

// system is what scripts/run.sh starts, in process: an embedded nats-server
// with JetStream on a random port, the group's streams and buckets, and,
// when asked for, a worker serving test/testdata/playbooks.
type system struct {
	cfg  *config.Config // aimed at the server, for client.Connect
	emb  *jsbridge.Embedded
	nc   *nats.Conn // the worker's connection
	dir  string
	stop func() // stops the worker
}

// startSystem starts a system; every error is returned, so both tests and
// examples can use it.
func startSystem(withWorker bool) (*system, error) {
	dir, err := os.MkdirTemp("", "client-test-")
	if err != nil {
		return nil, err
	}
	s := &system{dir: dir, stop: func() {}}
	cfg := config.DefaultConfig()
	cfg.NATS.Embedded.Enabled = true
	cfg.NATS.Embedded.Listen = "127.0.0.1:-1"
	cfg.NATS.Embedded.StoreDir = filepath.Join(dir, "jetstream")
	cfg.Worker.PlaybookDirectory, err = filepath.Abs("../test/testdata/playbooks")
	if err != nil {
		return nil, errors.Join(err, s.close())
	}
	if s.emb, err = jsbridge.StartEmbedded(cfg, nil); err != nil {
		return nil, errors.Join(err, s.close())
	}
	cfg.NATS.Servers = config.StringList{s.emb.ClientURL()}
	s.cfg = cfg
	if err := s.provision(withWorker); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

// provision creates the group's streams and buckets, as every worker does
// when it starts, and starts a worker when asked for.
func (s *system) provision(withWorker bool) error {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	nc, err := jsbridge.Connect(ctx, s.cfg, "test worker", log)
	if err != nil {
		return err
	}
	s.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	w := s.cfg.Worker
	names := jsbridge.Names{Prefix: w.TopicPrefix, Group: w.GroupName}
	assets, err := jsbridge.Provision(ctx, js, jsbridge.ProvisionConfig{Names: names, Replicas: 1}, log)
	if err != nil || !withWorker {
		return err
	}
	ports := jsbridge.Ports(nc, assets, names, jsbridge.NewPublisher(js, nil, log), names.Group, jsbridge.NewStatusStore(assets, log), nil)
	wk, err := worker.New(worker.Config{
		Group: names.Group, QueueName: names.TaskSubject(), WorkerID: "test-worker",
		PlaybookDir: w.PlaybookDirectory, DataDir: filepath.Join(s.dir, "data"),
		StatusInterval: 200 * time.Millisecond, KillGrace: 2 * time.Second, ShutdownGrace: time.Second,
	}, ports, log)
	if err != nil {
		return err
	}
	return s.run(wk)
}

// run runs the worker until stop, and waits until it takes tasks.
func (s *system) run(wk *worker.Worker) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wk.Run(ctx) }()
	s.stop = func() { cancel(); <-done }
	select {
	case <-wk.Ready():
		return nil
	case err := <-done:
		return errors.Join(errors.New("worker ended before it was ready"), err)
	case <-time.After(20 * time.Second):
		return errors.New("worker not ready after 20s")
	}
}

// close stops the worker and the server and removes their files.
func (s *system) close() error {
	s.stop()
	if s.nc != nil {
		s.nc.Close()
	}
	if s.emb != nil {
		s.emb.Shutdown()
	}
	return os.RemoveAll(s.dir)
}
