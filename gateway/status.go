// Package gateway is ansible-worker's MQTT side: it publishes the status of
// every task on the retained MQTT topics of the MQTT ansible-worker it
// replaces (<prefix>/<group>/tasks/<id>/status).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/retry"
)

// Publisher publishes one MQTT message at QoS 1 and returns once the broker
// has acknowledged it.
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, retain bool) error
}

// StatusMirror publishes every change of the group's TaskStatus, in the
// order the status bucket stored them, as a retained MQTT message. Any
// number of mirrors of a group may run: they share one durable consumer
// that hands out one change at a time, so a later status never goes out
// before an earlier one, and another mirror takes over when one dies.
type StatusMirror struct {
	js      jetstream.JetStream
	names   jsbridge.Names
	pub     Publisher
	durable string
	log     *slog.Logger
}

// NewStatusMirror mirrors the statuses of names' group to pub, through the
// durable consumer durable: ListenerMirror or BrokerMirror of the group,
// one per MQTT server the statuses go to.
func NewStatusMirror(js jetstream.JetStream, names jsbridge.Names, pub Publisher, durable string, log *slog.Logger) *StatusMirror {
	return &StatusMirror{js: js, names: names, pub: pub, durable: durable, log: log.With("component", "mqtt-status", "consumer", durable)}
}

// ListenerMirror names the mirror consumer of nats-server's MQTT listener.
func ListenerMirror(names jsbridge.Names) string { return "ansible-worker-mqtt-status-" + names.Group }

// BrokerMirror names the mirror consumer of the external MQTT broker.
func BrokerMirror(names jsbridge.Names) string { return "ansible-worker-broker-status-" + names.Group }

// mirrorAckWait is how long a change may take to reach the broker before
// the consumer hands it out again (to this or another mirror).
const mirrorAckWait = 30 * time.Second

// consumer creates the group's mirror consumer on the status bucket's
// stream when it is missing (a new one starts with the latest status of
// every task), and binds to it as it is otherwise: one whose settings
// contradict these is refused, never changed. Its replicas are left to
// the server (0): a durable consumer then has those of the bucket, which
// nats.replicas and the provision command set, and follows them when they
// change.
func (m *StatusMirror) consumer(ctx context.Context) (jetstream.Consumer, error) {
	stream := "KV_" + jsbridge.StatusBucket
	fix := fmt.Sprintf(`remove it with "nats consumer rm %s %s": it is created again at the next start, and publishes the latest status of every task again`,
		stream, m.durable)
	return jsbridge.BindConsumer(ctx, m.js, stream, jetstream.ConsumerConfig{
		Durable:       m.durable,
		Description:   "MQTT status topics of group " + m.names.Group,
		FilterSubject: "$KV." + jsbridge.StatusBucket + "." + m.names.Group + ".*",
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       mirrorAckWait,
		MaxAckPending: 1, // one change at a time, in order
		MaxDeliver:    -1,
	}, fix)
}

// openConsumer opens the mirror's consumer, retrying until ctx ends; a
// consumer that contradicts the mirror's settings is logged and returned
// at once.
func (m *StatusMirror) openConsumer(ctx context.Context) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	var ce *jsbridge.ConflictError
	err := retry.Do(ctx, retry.Policy{Max: 5 * time.Second}, func(ctx context.Context) error {
		var err error
		cons, err = m.consumer(ctx)
		if errors.As(err, &ce) {
			return retry.Permanent(err)
		}
		return err
	}, func(attempt int, err error) {
		if attempt == 1 || attempt%20 == 0 {
			m.log.Warn("cannot open the status mirror consumer, retrying", "err", err)
		}
	})
	if ce != nil {
		m.log.Error("the MQTT status topics are not published", "err", ce)
	}
	if err != nil {
		return nil, fmt.Errorf("status mirror: %w", err)
	}
	return cons, nil
}

// Run mirrors until ctx ends.
func (m *StatusMirror) Run(ctx context.Context) error {
	cons, err := m.openConsumer(ctx)
	if err != nil {
		return err
	}
	wait := retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}.NewBackoff()
	for ctx.Err() == nil {
		pull, cancel := context.WithTimeout(ctx, 10*time.Second)
		msg, err := cons.Next(jetstream.FetchContext(pull))
		cancel()
		if err != nil {
			if ctx.Err() == nil && !idle(err) {
				m.log.Debug("status mirror pull failed", "err", err)
				retry.Sleep(ctx, wait.Next())
			}
			continue
		}
		if err := m.mirror(ctx, msg); err != nil {
			m.log.Warn("status not published to MQTT; retrying", "subject", msg.Subject(), "err", err)
			_ = msg.NakWithDelay(wait.Next())
			continue
		}
		wait.Reset()
		if err := msg.Ack(); err != nil {
			m.log.Debug("status mirror ack failed", "err", err)
		}
	}
	return nil
}

// mirror publishes one change: the status, or an empty retained message
// (which clears the topic) for a deleted or expired status.
func (m *StatusMirror) mirror(ctx context.Context, msg jetstream.Msg) error {
	key := strings.TrimPrefix(msg.Subject(), "$KV."+jsbridge.StatusBucket+".")
	id := strings.TrimPrefix(key, m.names.Group+".")
	payload := msg.Data()
	switch msg.Headers().Get("KV-Operation") {
	case "DEL", "PURGE":
		payload = nil
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return m.pub.Publish(pctx, m.names.MQTTStatusTopic(id), payload, true)
}

// idle tells a pull that ended because no change came in time.
func idle(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout)
}
