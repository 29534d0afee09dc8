package main

import (
	"context"
	"errors"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/gateway"
)

func gatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "join an external MQTT 5 broker (the mqtt section) to the worker group until SIGINT/SIGTERM",
		Description: "Tasks published on <prefix>/<group>/tasks and cancels on <prefix>/<group>/tasks/<id>/cancel\n" +
			"go to NATS; every status change goes to <prefix>/<group>/tasks/<id>/status, QoS 1, retained.\n" +
			"Start as many gateways of a group as you like: they share the work (give each its own mqtt.client_id).",
		Flags: withCommon(groupFlag(),
			&cli.BoolFlag{Name: "leave", Usage: "retire this gateway's client id: carry what the broker kept for it, end its session on the broker, exit"}),
		Action: gatewayAction,
	}
}

func gatewayAction(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if g := c.String("group"); g != "" {
		cfg.Worker.GroupName = g
	}
	if !cfg.MQTT.Enabled() {
		return cli.Exit("mqtt.host is not set: the gateway needs the MQTT broker to join (the mqtt section of the configuration)", exitUsage)
	}
	log, logOut, err := newLogger(cfg)
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	defer logOut.Close()
	// SIGHUP (systemctl reload) reopens the log file, and never stops
	// the gateway.
	defer onSIGHUP(c.Context, log, reopenLogHook(logOut, log))()
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cl, err := client.Connect(cctx, cfg, client.WithGroup(cfg.Worker.GroupName), client.WithLogger(log.With(componentKey, config.LogNATS)), client.WithName("ansible-worker gateway"))
	cancel()
	if err != nil {
		return connectExit(err)
	}
	defer cl.Close()
	ready := make(chan struct{})
	go notifyWhenReady(ctx, ready, log)
	return gatewayExit(runGateway(ctx, cfg, cl, c.Bool("leave"), func() { close(ready) }, log))
}

// leaveQuiet is how long --leave waits for more of what the broker kept.
const leaveQuiet = 2 * time.Second

// runGateway runs the MQTT gateway of cfg on cl's connection until ctx
// ends; with leave, it retires the gateway's client id instead.
func runGateway(ctx context.Context, cfg *config.Config, cl *client.Client, leave bool, ready func(), log *slog.Logger) error {
	js, err := jetstream.New(cl.Conn())
	if err != nil {
		return err
	}
	gw := gateway.New(cfg.MQTT, cfg.MQTTClientID(), cl, js, cl.Names(), log.With(componentKey, config.LogMQTT))
	if leave {
		return gw.Leave(ctx, leaveQuiet)
	}
	return gw.Run(ctx, ready)
}

// gatewayExit maps the gateway's end to exit codes: 2 for settings the
// broker refuses, 0 for a stop by signal.
func gatewayExit(err error) error {
	var se *gateway.SettingsError
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return nil
	case errors.As(err, &se):
		return cli.Exit("MQTT broker: "+se.Error(), exitUsage)
	}
	return cli.Exit(err.Error(), exitFailed)
}
