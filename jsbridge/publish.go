package jsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/retry"
)

// Publisher publishes to JetStream with the configured headers and a
// Nats-Msg-Id, retrying until the server has stored the message. The message
// id makes a retry that crossed a lost ack harmless.
type Publisher struct {
	js      jetstream.JetStream
	headers nats.Header
	log     *slog.Logger
}

// NewPublisher returns a Publisher that adds headers to every message.
func NewPublisher(js jetstream.JetStream, headers map[string]string, log *slog.Logger) *Publisher {
	h := nats.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	return &Publisher{js: js, headers: h, log: log}
}

// Publish stores data on subject, retrying transient failures (server away,
// no responders, timeouts) until it succeeds or ctx ends. Errors that retrying
// cannot fix, such as a message larger than the server accepts, are returned.
func (p *Publisher) Publish(ctx context.Context, subject, msgID string, data []byte) error {
	attempts := 0
	err := retry.Do(ctx, retry.Policy{}, func(ctx context.Context) error {
		attempts++
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		for k, v := range p.headers {
			m.Header[k] = v
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := p.js.PublishMsg(actx, m, jetstream.WithMsgID(msgID))
		if err != nil && permanent(err) {
			return retry.Permanent(err)
		}
		return err
	}, func(attempt int, err error) {
		if attempt == 1 || attempt%20 == 0 {
			p.log.Warn("publish failed, retrying", "subject", subject, "attempt", attempt, "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	if attempts > 1 {
		p.log.Info("publish succeeded after retries", "subject", subject, "attempts", attempts)
	}
	return nil
}

func permanent(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		return true
	}
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.Code == 400
	}
	return false
}

// Outbox publishes messages in the order they were added, from its own
// goroutine, so the producer (Ansible's event stream) never waits for the
// network. While the server is away messages queue in memory and go out, in
// order and none missing, once it is back.
type Outbox struct {
	pub  *Publisher
	log  *slog.Logger
	mu   sync.Mutex
	q    []outMsg
	wake chan struct{}
	done chan struct{}
	err  error
	ctx  context.Context
	stop context.CancelFunc
}

type outMsg struct {
	subject, id string
	data        []byte
	flush       chan struct{}
}

// NewOutbox starts an Outbox. ctx bounds how long it keeps retrying.
func (p *Publisher) NewOutbox(ctx context.Context) *Outbox {
	ctx, stop := context.WithCancel(ctx)
	o := &Outbox{pub: p, log: p.log, wake: make(chan struct{}, 1), done: make(chan struct{}), ctx: ctx, stop: stop}
	go o.loop()
	return o
}

// Add queues a message; it never blocks.
func (o *Outbox) Add(subject, msgID string, data []byte) {
	o.mu.Lock()
	o.q = append(o.q, outMsg{subject: subject, id: msgID, data: data})
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Flush waits until everything added so far is stored, or ctx ends.
func (o *Outbox) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	o.mu.Lock()
	o.q = append(o.q, outMsg{flush: ch})
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	select {
	case <-ch:
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.err
	case <-o.done:
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.err == nil {
			return errors.New("outbox closed")
		}
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes with ctx, then stops the goroutine.
func (o *Outbox) Close(ctx context.Context) error {
	err := o.Flush(ctx)
	o.stop()
	<-o.done
	return err
}

func (o *Outbox) loop() {
	defer close(o.done)
	for {
		o.mu.Lock()
		batch := o.q
		o.q = nil
		o.mu.Unlock()
		for _, m := range batch {
			if m.flush != nil {
				close(m.flush)
				continue
			}
			if err := o.pub.Publish(o.ctx, m.subject, m.id, m.data); err != nil {
				if o.ctx.Err() != nil {
					o.mu.Lock()
					o.err = err
					o.mu.Unlock()
					return
				}
				// A message the server will never take (too large) is logged
				// and skipped so the ones after it still go out.
				o.log.Error("dropping message the server refuses", "subject", m.subject, "bytes", len(m.data), "err", err)
				o.mu.Lock()
				o.err = err
				o.mu.Unlock()
			}
		}
		select {
		case <-o.wake:
		case <-o.ctx.Done():
			return
		}
	}
}
