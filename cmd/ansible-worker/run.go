package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/gateway"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/metrics"
	"github.com/ansible-worker/ansible-worker/retry"
	"github.com/ansible-worker/ansible-worker/runnerstream"
	"github.com/ansible-worker/ansible-worker/worker"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:   "run",
		Usage:  "run a worker until SIGINT/SIGTERM (the default command)",
		Flags:  withCommon(),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if err := cfg.CheckPlaybookDir(); err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	if err := worker.CanRunPlaybooks(); err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	log, logOut, err := newLogger(cfg)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	defer logOut.Close()
	// From here on SIGHUP (systemctl reload) reopens the log file, and
	// never stops the worker.
	defer onSIGHUP(c.Context, log, reopenLogHook(logOut, log))()

	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var extra []nats.Option
	mqttAddr := cfg.NATS.MQTTListener
	if cfg.NATS.Embedded.Enabled {
		embLog := log.With(componentKey, config.LogEmbedded)
		emb, err := jsbridge.StartEmbedded(cfg, embLog)
		if errors.Is(err, jsbridge.ErrSettings) {
			return cli.Exit(err.Error(), exitUsage)
		}
		if err != nil {
			return cli.Exit(err.Error(), exitFailed)
		}
		defer emb.Shutdown()
		embLog.Info("embedded NATS server ready", "url", emb.ClientURL(), "mqtt", emb.MQTTAddr())
		// A node of a cluster waits for its peers, however long: exiting
		// would take it away from them, and provisioning would give up.
		if emb.WaitJetStream(ctx, embLog) != nil {
			return nil // stopped before the cluster formed
		}
		extra = append(extra, emb.InProcessOption())
		if mqttAddr == "" {
			mqttAddr = emb.MQTTAddr()
		}
	}
	nc, err := jsbridge.Connect(ctx, cfg, "ansible-worker "+cfg.Worker.ID(), log.With(componentKey, config.LogNATS), extra...)
	if err != nil {
		return connectExit(err)
	}
	defer nc.Close()
	return serve(ctx, cfg, nc, mqttAddr, log)
}

// serve runs the worker on nc, with its MQTT status topics (on the listener
// at mqttAddr, "" for none) and gateway, until ctx ends; then it drains.
func serve(ctx context.Context, cfg *config.Config, nc *nats.Conn, mqttAddr string, log *slog.Logger) error {
	id := cfg.Worker.ID()
	jobs, err := loadJobs(cfg, log)
	if err != nil {
		return err
	}
	defer onSIGHUP(ctx, log, jobs.reload)()
	var m *metrics.Metrics
	if cfg.Worker.HTTPListen != "" {
		m = metrics.New(cfg.Worker.GroupName, id, appVersion())
	}
	// Discoverable (`nats micro ls`, `workers`, the clients' "no worker"
	// warning), with its stats, and the endpoints cancel and status.
	var running atomic.Pointer[worker.Worker]
	svc, err := jsbridge.RegisterWorker(nc, jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: cfg.Worker.GroupName}, id,
		appVersion(), jsbridge.WorkerOptions{Concurrency: cfg.Worker.Concurrency, Stats: func() jsbridge.WorkerStats {
			return workerStats(running.Load())
		}})
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	defer func() { _ = svc.Stop() }()
	w, ports, err := newWorker(ctx, cfg, nc, id, jobs, m, svc, log)
	if err != nil {
		return err
	}
	running.Store(w)
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	if m != nil {
		if err := serveMetrics(ctx, runCtx, cfg, nc, w, ports, m, log); err != nil {
			return cli.Exit(err.Error(), exitUsage)
		}
	}
	stopMirror := runStatusMirror(ctx, cfg, mqttAddr, nc, id, log)
	defer stopMirror()
	gwReady, gwDone := startGateway(runCtx, cfg, nc, stopRun, log)
	go notifyWhenReady(ctx, allClosed(w.Ready(), gwReady), log)
	if err := w.Run(runCtx); err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	<-gwDone
	if cause := context.Cause(runCtx); ctx.Err() == nil && cause != nil {
		return gatewayExit(cause)
	}
	_ = svc.Stop() // gone from discovery before the connection drains
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), nc.Opts.DrainTimeout+time.Second)
	defer cancel()
	if err := jsbridge.Drain(dctx, nc); err != nil {
		log.Warn("the NATS connection did not drain", "err", err)
	}
	return nil
}

// newWorker provisions the streams and buckets and makes the worker.
func newWorker(ctx context.Context, cfg *config.Config, nc *nats.Conn, id string, jobs *jobsHolder, m *metrics.Metrics, svc micro.Service, log *slog.Logger) (*worker.Worker, worker.Ports, error) {
	for _, a := range cfg.Advice() {
		log.Warn(a)
	}
	ports, err := provisionPorts(ctx, cfg, nc, m, svc, log.With(componentKey, config.LogNATS))
	if err != nil {
		return nil, ports, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, ports, cli.Exit(fmt.Sprintf("cannot find the ansible-worker binary: %v", err), exitFailed)
	}
	wcfg := workerConfig(cfg, id, int(nc.MaxPayload()))
	wcfg.Supervisor = self
	wcfg.Jobs = jobs.get
	w, err := worker.New(wcfg, ports, log.With(componentKey, config.LogWorker))
	if err != nil {
		return nil, ports, cli.Exit(err.Error(), exitUsage)
	}
	return w, ports, nil
}

// runStatusMirror publishes the group's statuses, retained, on the MQTT
// listener at addr ("" : none) until the returned stop is called.
func runStatusMirror(ctx context.Context, cfg *config.Config, addr string, nc *nats.Conn, id string, log *slog.Logger) (stop func()) {
	if addr == "" {
		return func() {}
	}
	log = log.With(componentKey, config.LogMQTT)
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		var l *gateway.Listener
		err := retry.Do(mctx, retry.Policy{Max: 10 * time.Second}, func(ctx context.Context) (err error) {
			l, err = gateway.DialListener(ctx, addr, cfg, "ansible-worker-status-"+id, log)
			return err
		}, func(attempt int, err error) {
			if attempt == 1 {
				log.Warn("MQTT status topics wait for the MQTT listener", "err", err)
			}
		})
		if err != nil {
			return
		}
		defer l.Close()
		js, _ := jetstream.New(nc)
		names := jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: cfg.Worker.GroupName}
		log.Info("MQTT status topics published", "listener", addr)
		_ = gateway.NewStatusMirror(js, names, l, gateway.ListenerMirror(names), log).Run(mctx)
	}()
	return func() { cancel(); <-done }
}

// workerStats is what the worker's service reports of w (nil: starting).
func workerStats(w *worker.Worker) jsbridge.WorkerStats {
	out := jsbridge.WorkerStats{Ended: map[string]int64{}}
	if w == nil {
		return out
	}
	st := w.Stats()
	out.Running = st.Running
	for s, n := range st.Ended {
		out.Ended[string(s)] = n
	}
	return out
}

// provisionPorts binds to the group's streams, buckets and consumer,
// creating those that are missing, and returns the worker's ports over
// them. Existing ones whose settings contradict the configuration stop
// the worker (exit 2) with each difference and the provision command that
// changes them: a worker never changes what other workers share.
func provisionPorts(ctx context.Context, cfg *config.Config, nc *nats.Conn, m *metrics.Metrics, svc micro.Service, log *slog.Logger) (worker.Ports, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return worker.Ports{}, cli.Exit(fmt.Sprintf("jetstream: %v", err), exitUnreachable)
	}
	names := jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: cfg.Worker.GroupName}
	assets, err := jsbridge.Bind(ctx, js, jsbridge.ProvisionSettings(cfg, names), log)
	if err != nil {
		return worker.Ports{}, provisionExit(cfg, err)
	}
	pub := jsbridge.NewPublisher(js, cfg.NATS.Headers, log)
	store := jsbridge.NewStatusStore(assets, log)
	ports := jsbridge.Ports(nc, assets, names, pub, cfg.SubjectID(), store, svc)
	if err := jsbridge.AddStatusEndpoint(svc, names, store); err != nil {
		return worker.Ports{}, cli.Exit(err.Error(), exitFailed)
	}
	if m != nil {
		pub.Observe(m)
		ports.Observer = m
	}
	if cfg.Worker.AllowRunnerJobs {
		ports.RunnerJobs = runnerJobs(cfg, jsbridge.NewJobObjects(js, assets.Jobs, names))
	}
	return ports, nil
}

// runnerJobs runs the jobs submitters ship, held to the rules of an
// untrusted stream.
func runnerJobs(cfg *config.Config, objs *jsbridge.JobObjects) *runnerstream.StoreJobs {
	w := cfg.Worker
	return &runnerstream.StoreJobs{Store: objs, Dir: w.DataDir, Options: runnerstream.JobOptions{
		MaxForks: w.MaxForks, MaxTimeout: seconds(w.MaxTaskTimeout), AllowLimitRegex: w.AllowLimitRegex}}
}

// workerConfig is the worker's part of the configuration; maxPayload is
// the server's message size limit.
func workerConfig(cfg *config.Config, id string, maxPayload int) worker.Config {
	w := cfg.Worker
	return worker.Config{
		Group:           w.GroupName,
		QueueName:       jsbridge.Names{Prefix: w.TopicPrefix, Group: w.GroupName}.TaskSubject(),
		WorkerID:        id,
		PlaybookDir:     w.PlaybookDirectory,
		AnsiblePlaybook: w.AnsiblePlaybook,
		AllowPlaybooks:  w.AllowPlaybooks.Patterns(),
		PlaybooksOff:    w.AllowPlaybooks.Off(),
		Policy: worker.Policy{
			AllowExtraVars:        w.AllowExtraVars,
			AllowLimitRegex:       w.AllowLimitRegex,
			AllowInventoryScripts: w.AllowInventoryScripts,
			MaxForks:              w.MaxForks,
			MaxTaskTimeout:        seconds(w.MaxTaskTimeout),
			AllowRunnerJobs:       w.AllowRunnerJobs,
		},
		Concurrency:    w.Concurrency,
		MaxQueueSize:   w.MaxQueueSize,
		MaxDeliver:     w.MaxDeliver,
		TaskTimeout:    seconds(w.TaskTimeout),
		StatusInterval: seconds(w.StatusInterval),
		KillGrace:      seconds(w.KillGrace),
		ShutdownGrace:  seconds(w.ShutdownGrace),
		GitTimeout:     seconds(w.GitTimeout),
		AckWait:        w.AckWaitDuration(),
		DataDir:        w.DataDir,
		MaxEventBytes:  maxPayload - 8<<10,
		HiddenEnv:      cfg.ExpandedVars,
		EventColor:     w.EventColor,
		WarmStart:      w.WarmStart,
	}
}

func seconds[T int | float64](v T) time.Duration {
	return time.Duration(float64(v) * float64(time.Second))
}

// startGateway runs the MQTT gateway in the worker's process when the
// configuration names a broker (mqtt.host). A gateway that cannot start
// stops the worker through stop. ready is closed once it is subscribed (at
// once without a broker), done once it has ended.
func startGateway(ctx context.Context, cfg *config.Config, nc *nats.Conn, stop context.CancelCauseFunc, log *slog.Logger) (ready, done <-chan struct{}) {
	r, d := make(chan struct{}), make(chan struct{})
	if !cfg.MQTT.Enabled() {
		close(r)
		close(d)
		return r, d
	}
	log = log.With(componentKey, config.LogMQTT)
	go func() {
		defer close(d)
		cl, err := client.New(nc, jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: cfg.Worker.GroupName}, client.WithLogger(log))
		if err == nil {
			err = runGateway(ctx, cfg, cl, false, func() { close(r) }, log)
		}
		if err != nil && ctx.Err() == nil {
			log.Error("the MQTT gateway cannot start; stopping", "err", err)
			stop(err)
		}
	}()
	return r, d
}

// allClosed is closed once every one of chans is.
func allClosed(chans ...<-chan struct{}) <-chan struct{} {
	all := make(chan struct{})
	go func() {
		for _, c := range chans {
			<-c
		}
		close(all)
	}()
	return all
}
