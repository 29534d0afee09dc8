package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/ansible-worker/ansible-worker/config"
)

// Listener publishes through the MQTT listener of a NATS server, as an MQTT
// 3.1.1 client (the only version nats-server speaks). Only a message
// published through the listener is retained for later MQTT subscribers; a
// publish on the NATS side would reach them at QoS 0 and never retained.
type Listener struct {
	c mqtt.Client
}

// DialListener connects to the MQTT listener at addr (host:port) with the
// NATS credentials of cfg (a token is given as the password), reconnecting
// by itself when the connection drops.
func DialListener(ctx context.Context, addr string, cfg *config.Config, clientID string, log *slog.Logger) (*Listener, error) {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(true).
		SetConnectRetry(false).SetOrderMatters(true).SetConnectTimeout(10 * time.Second).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			log.Warn("MQTT listener connection lost; reconnecting", "addr", addr, "err", err)
		})
	switch {
	case cfg.NATS.Token != "":
		opts.SetUsername("token").SetPassword(cfg.NATS.Token)
	case cfg.NATS.Username != "":
		opts.SetUsername(cfg.NATS.Username).SetPassword(cfg.NATS.Password)
	}
	c := mqtt.NewClient(opts)
	if err := wait(ctx, c.Connect()); err != nil {
		return nil, fmt.Errorf("connect to the MQTT listener %s: %w", addr, err)
	}
	return &Listener{c: c}, nil
}

// Publish sends one message at QoS 1 and waits for the listener's PUBACK.
func (l *Listener) Publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if err := wait(ctx, l.c.Publish(topic, 1, retain, payload)); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Close disconnects, letting in-flight messages finish for a moment.
func (l *Listener) Close() { l.c.Disconnect(250) }

// wait waits for a paho token until ctx ends.
func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return errors.Join(errors.New("no answer from the MQTT server"), ctx.Err())
	}
}
