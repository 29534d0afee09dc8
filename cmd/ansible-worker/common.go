package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// loadConfig reads the configuration named by --config (or ./config.yaml)
// and applies --server. A bad configuration exits with code 2.
func loadConfig(c *cli.Context) (*config.Config, error) {
	cfg, err := config.LoadConfig(c.String("config"), os.LookupEnv)
	if err != nil {
		return nil, cli.Exit(err.Error(), exitUsage)
	}
	if s := c.String("server"); s != "" {
		cfg.NATS.Servers = splitList(s)
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// newLogger builds the slog logger of the configuration.
func newLogger(cfg *config.Config) (*slog.Logger, io.Closer, error) {
	var w io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("open log file: %w", err)
		}
		w, closer = f, f
	}
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if strings.EqualFold(cfg.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts)), closer, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), closer, nil
}

// client is a connection for the commands that talk to a running system.
type client struct {
	cfg   *config.Config
	nc    *nats.Conn
	js    jetstream.JetStream
	names jsbridge.Names
	log   *slog.Logger
}

// connect opens a client connection; when NATS cannot be reached it exits
// with code 5.
func connect(c *cli.Context, cfg *config.Config, group string) (*client, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
	defer cancel()
	nc, err := jsbridge.Connect(ctx, cfg, "ansible-worker "+c.Command.Name, log, nats.MaxReconnects(10))
	if err != nil {
		return nil, cli.Exit(err.Error(), exitUnreachable)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, cli.Exit(fmt.Sprintf("jetstream: %v", err), exitUnreachable)
	}
	if group == "" {
		group = cfg.Worker.GroupName
	}
	if err := schemas.CheckID("group", group); err != nil {
		nc.Close()
		return nil, cli.Exit(err.Error(), exitUsage)
	}
	return &client{cfg: cfg, nc: nc, js: js, names: jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: group}, log: log}, nil
}

func (cl *client) close() { cl.nc.Close() }

// exitForState maps a final task state to the contract's exit codes.
func exitForState(s schemas.State) int {
	switch s {
	case schemas.StateSuccess:
		return exitSuccess
	case schemas.StateTimeout:
		return exitTimeout
	case schemas.StateCancelled:
		return exitCancelled
	}
	return exitFailed
}

// withClient loads the configuration, connects for the command's --group,
// and runs fn with the connection.
func withClient(c *cli.Context, fn func(cl *client) error) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	cl, err := connect(c, cfg, c.String("group"))
	if err != nil {
		return err
	}
	defer cl.close()
	return fn(cl)
}
