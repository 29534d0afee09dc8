package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/jsbridge"
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
	log, closer, err := newLogger(cfg)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	defer closer.Close()

	// Keys of features still to come are accepted, so configurations can be
	// written ahead, but must not look as if they did something.
	for key, set := range map[string]bool{"worker.jobs_file": cfg.Worker.JobsFile != "", "worker.http_listen": cfg.Worker.HTTPListen != ""} {
		if set {
			log.Warn(key + " is not implemented in this version and is ignored")
		}
	}

	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var extra []nats.Option
	if cfg.NATS.Embedded.Enabled {
		emb, err := jsbridge.StartEmbedded(cfg, log)
		if err != nil {
			return cli.Exit(err.Error(), exitFailed)
		}
		defer emb.Shutdown()
		log.Info("embedded NATS server ready", "url", emb.ClientURL(), "mqtt", emb.MQTTAddr())
		extra = append(extra, emb.InProcessOption())
	}
	id := cfg.Worker.ID()
	nc, err := jsbridge.Connect(ctx, cfg, "ansible-worker "+id, log, extra...)
	if err != nil {
		return cli.Exit(err.Error(), exitUnreachable)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return cli.Exit(fmt.Sprintf("jetstream: %v", err), exitUnreachable)
	}
	names := jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: cfg.Worker.GroupName}
	assets, err := jsbridge.Provision(ctx, js, jsbridge.ProvisionConfig{
		Names: names, Replicas: cfg.NATS.Replicas, AckWait: cfg.Worker.AckWaitDuration(),
		StatusTTL: cfg.NATS.StatusTTLDuration(), EventsMaxAge: cfg.NATS.EventsMaxAgeDuration(),
		TasksMaxMsgSize: int32(cfg.NATS.TasksMaxMsgSize), TasksMaxBytes: cfg.NATS.TasksMaxBytes,
		TasksMaxAge: cfg.NATS.TasksMaxAgeDuration()}, log)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	self, err := os.Executable()
	if err != nil {
		return cli.Exit(fmt.Sprintf("cannot find the ansible-worker binary: %v", err), exitFailed)
	}
	w, err := worker.New(worker.Config{
		Supervisor:      self,
		Names:           names,
		WorkerID:        id,
		SubjectID:       cfg.SubjectID(),
		PlaybookDir:     cfg.Worker.PlaybookDirectory,
		AnsiblePlaybook: cfg.Worker.AnsiblePlaybook,
		AllowPlaybooks:  cfg.Worker.AllowPlaybooks,
		Policy: worker.Policy{
			AllowExtraVars:        cfg.Worker.AllowExtraVars,
			AllowLimitRegex:       cfg.Worker.AllowLimitRegex,
			AllowInventoryScripts: cfg.Worker.AllowInventoryScripts,
			MaxForks:              cfg.Worker.MaxForks,
			MaxTaskTimeout:        time.Duration(cfg.Worker.MaxTaskTimeout) * time.Second,
		},
		Concurrency:    cfg.Worker.Concurrency,
		MaxQueueSize:   cfg.Worker.MaxQueueSize,
		MaxDeliver:     cfg.Worker.MaxDeliver,
		TaskTimeout:    seconds(cfg.Worker.TaskTimeout),
		StatusInterval: seconds(cfg.Worker.StatusInterval),
		KillGrace:      seconds(cfg.Worker.KillGrace),
		ShutdownGrace:  seconds(cfg.Worker.ShutdownGrace),
		GitTimeout:     seconds(cfg.Worker.GitTimeout),
		AckWait:        cfg.Worker.AckWaitDuration(),
		DataDir:        cfg.Worker.DataDir,
		MaxEventBytes:  int(nc.MaxPayload()) - 8<<10,
		HiddenEnv:      cfg.ExpandedVars,
	}, worker.Deps{
		Conn:      nc,
		Queue:     jsbridge.NewQueue(assets, names),
		Status:    jsbridge.NewStatusStore(assets, log),
		Publisher: jsbridge.NewPublisher(js, cfg.NATS.Headers, log),
	}, log)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	if err := w.Run(ctx); err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	_ = nc.Drain()
	return nil
}

func seconds[T int | float64](v T) time.Duration {
	return time.Duration(float64(v) * float64(time.Second))
}
