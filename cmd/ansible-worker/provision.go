package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
)

func provisionCommand() *cli.Command {
	return &cli.Command{
		Name:  "provision",
		Usage: "create or update the streams, buckets and consumer of the configuration's group, and print what changed",
		Description: "Run it once, before the workers, whenever the nats settings change (replicas, limits, max ages, ack_wait):\n" +
			"workers create what is missing but never change what exists, and refuse to start when it contradicts\n" +
			"their configuration. It prints one line per stream, bucket, object store and consumer: created, updated\n" +
			"(each changed setting), unchanged, or cannot change (what JetStream cannot change in place, and what to do).\n" +
			"Nothing is deleted. With nats.embedded.enabled and no server answering, it runs the embedded server itself.",
		Flags:  withCommon(&cli.BoolFlag{Name: "dry-run", Usage: "print what would change, and change nothing"}),
		Action: provisionAction,
	}
}

func provisionAction(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, stop, err := provisionConn(c.Context, cfg, log, c.App.ErrWriter)
	if err != nil {
		return err
	}
	defer stop()
	js, err := jetstream.New(nc)
	if err != nil {
		return cli.Exit(fmt.Sprintf("jetstream: %v", err), exitUnreachable)
	}
	pc := jsbridge.ProvisionSettings(cfg, jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: cfg.Worker.GroupName})
	pc.Jobs = true // for every worker that runs runner jobs, whatever this one does
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
	defer cancel()
	rep, err := jsbridge.Apply(ctx, js, pc, c.Bool("dry-run"), log)
	for _, line := range rep.Lines() {
		fmt.Fprintln(c.App.Writer, line)
	}
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	if n := rep.Blocked(); n > 0 {
		return cli.Exit(fmt.Sprintf("%d setting(s) cannot be changed in place and were left as they are: see above", n), exitFailed)
	}
	return nil
}

// provisionConn connects to the configuration's servers. With the
// embedded server enabled and no server answering (the worker that runs it
// is stopped), it starts the embedded server in this process for the time
// of the command. stop closes what it opened.
func provisionConn(ctx context.Context, cfg *config.Config, log *slog.Logger, errOut io.Writer) (*nats.Conn, func(), error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	name := "ansible-worker provision"
	nc, err := jsbridge.Connect(cctx, cfg, name, log, nats.MaxReconnects(10))
	if err == nil {
		return nc, nc.Close, nil
	}
	if !cfg.NATS.Embedded.Enabled || !errors.Is(err, jsbridge.ErrUnreachable) {
		return nil, nil, connectExit(err)
	}
	emb, eerr := jsbridge.StartEmbedded(cfg, log)
	if errors.Is(eerr, jsbridge.ErrSettings) {
		return nil, nil, cli.Exit(eerr.Error(), exitUsage)
	}
	if eerr != nil {
		return nil, nil, cli.Exit(fmt.Sprintf("%v; and the embedded server does not start: %v", err, eerr), exitUnreachable)
	}
	nc, err = jsbridge.Connect(cctx, cfg, name, log, emb.InProcessOption())
	if err != nil {
		emb.Shutdown()
		return nil, nil, connectExit(err)
	}
	fmt.Fprintln(errOut, "ansible-worker: no server answered: the embedded server runs for the time of the command")
	return nc, func() { nc.Close(); emb.Shutdown() }, nil
}

// provisionExit is how a worker stops on a failed provisioning: a
// contradiction of its configuration exits 2 with each difference and the
// provision command line for its configuration file.
func provisionExit(cfg *config.Config, err error) error {
	var ce *jsbridge.ConflictError
	if errors.As(err, &ce) {
		return cli.Exit(ce.Explain(provisionCommandLine(cfg)), exitUsage)
	}
	return cli.Exit(err.Error(), exitFailed)
}

// provisionCommandLine is the provision command for cfg's file.
func provisionCommandLine(cfg *config.Config) string {
	if cfg.File == "" {
		return "ansible-worker provision"
	}
	f := cfg.File
	if strings.ContainsAny(f, " \t'\"$`\\") {
		f = "'" + strings.ReplaceAll(f, "'", `'\''`) + "'"
	}
	return "ansible-worker provision -c " + f
}
