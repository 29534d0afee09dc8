package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// loadConfig reads the configuration named by --config (or ./config.yaml)
// and applies --server, each given before or after the command name. A bad
// configuration exits with code 2.
func loadConfig(c *cli.Context) (*config.Config, error) {
	cfg, err := config.LoadConfig(commonFlag(c, "config"), os.LookupEnv)
	if err != nil {
		return nil, cli.Exit(err.Error(), exitUsage)
	}
	if s := commonFlag(c, "server"); s != "" {
		cfg.NATS.Servers = splitList(s)
	}
	return cfg, nil
}

// commonFlag is the value of a common flag from the innermost context that
// set it. Commands define the common flags too, so c.String would find the
// command's unset flag and miss "-c FILE" before the command name.
func commonFlag(c *cli.Context, name string) string {
	for _, lc := range c.Lineage() {
		if lc.IsSet(name) {
			return lc.String(name)
		}
	}
	return c.String(name)
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

// connect opens a client connection for the command's --group. An
// unreachable server exits with code 5; bad connection settings or a bad
// group exit with code 2.
func connect(c *cli.Context, cfg *config.Config) (*client.Client, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
	defer cancel()
	cl, err := client.Connect(ctx, cfg, client.WithGroup(c.String("group")), client.WithLogger(log),
		client.WithName("ansible-worker "+c.Command.Name), client.WithNATSOptions(nats.MaxReconnects(10)))
	if err != nil {
		return nil, connectExit(err)
	}
	return cl, nil
}

// connectExit maps a failed connection to the exit codes: 5 only when no
// server could be reached, 2 for bad settings (TLS, credentials, nkeys, the
// group).
func connectExit(err error) error {
	if errors.Is(err, jsbridge.ErrUnreachable) {
		return cli.Exit(err.Error(), exitUnreachable)
	}
	return cli.Exit(err.Error(), exitUsage)
}

// exitFor maps a client error to the contract's exit codes: a bad request,
// an unknown task or a task id in use is bad usage (2); anything else means
// NATS did not do what was asked (5).
func exitFor(err error) error {
	if errors.Is(err, client.ErrInvalid) || errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrTaskExists) {
		return cli.Exit(err.Error(), exitUsage)
	}
	return cli.Exit(err.Error(), exitUnreachable)
}

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
func withClient(c *cli.Context, fn func(cl *client.Client) error) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	cl, err := connect(c, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	return fn(cl)
}
