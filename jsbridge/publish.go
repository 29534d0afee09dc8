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
	obs     PublishObserver
}

// PublishObserver is told of every message a Publisher stored, retried
// or dropped, for metrics. Its methods must return at once.
type PublishObserver interface {
	// Published: n messages stored.
	Published(n int)
	// Retried: one publish attempt failed and is tried again.
	Retried()
	// Dropped: a message the server refuses for good.
	Dropped()
}

// Observe makes p tell obs of what it publishes.
func (p *Publisher) Observe(obs PublishObserver) { p.obs = obs }

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
		actx, cancel := context.WithTimeout(ctx, publishTimeout)
		defer cancel()
		_, err := p.js.PublishMsg(actx, p.message(subject, data), jetstream.WithMsgID(msgID))
		if err != nil && permanent(err) {
			return retry.Permanent(err)
		}
		return err
	}, func(attempt int, err error) {
		if p.obs != nil {
			p.obs.Retried()
		}
		if attempt == 1 || attempt%20 == 0 {
			p.log.Warn("publish failed, retrying", "subject", subject, "attempt", attempt, "err", err)
		}
	})
	if err != nil {
		if p.obs != nil && ctx.Err() == nil {
			p.obs.Dropped()
		}
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	if p.obs != nil {
		p.obs.Published(1)
	}
	if attempts > 1 {
		p.log.Info("publish succeeded after retries", "subject", subject, "attempts", attempts)
	}
	return nil
}

// publishTimeout is how long a publish waits for the server's ack.
const publishTimeout = 5 * time.Second

// message is data for subject with the configured headers.
func (p *Publisher) message(subject string, data []byte) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	for k, v := range p.headers {
		m.Header[k] = v
	}
	return m
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

// Limits of an Outbox: how many messages are in flight at once (published,
// not yet acknowledged), and how many bytes may wait before Add blocks.
const (
	outboxWindow   = 64
	outboxMaxBytes = 16 << 20
)

// Outbox publishes messages in the order they were added, from its own
// goroutine, so the producer (Ansible's event stream) never waits for the
// network: up to outboxWindow at a time, each window acknowledged before
// the next. While the server is away messages wait, in order and none
// missing, and go out once it is back; past outboxMaxBytes waiting, Add
// blocks (the playbook then waits on its output) rather than holding an
// unbounded queue in memory.
type Outbox struct {
	pub   *Publisher
	log   *slog.Logger
	mu    sync.Mutex
	q     []outMsg
	bytes int
	// maxBytes is outboxMaxBytes, but in tests.
	maxBytes int
	wake     chan struct{}
	room     chan struct{}
	done     chan struct{}
	err      error
	ctx      context.Context
	stop     context.CancelFunc
}

type outMsg struct {
	subject, id string
	data        []byte
	flush       chan struct{}
}

// NewOutbox starts an Outbox. ctx bounds how long it keeps retrying.
func (p *Publisher) NewOutbox(ctx context.Context) *Outbox {
	ctx, stop := context.WithCancel(ctx)
	o := &Outbox{pub: p, log: p.log, maxBytes: outboxMaxBytes, wake: make(chan struct{}, 1),
		room: make(chan struct{}, 1), done: make(chan struct{}), ctx: ctx, stop: stop}
	go o.loop()
	return o
}

// Add queues a message. It blocks only while outboxMaxBytes wait to be
// published (and not after the Outbox stopped).
func (o *Outbox) Add(subject, msgID string, data []byte) {
	o.mu.Lock()
	for o.bytes > 0 && o.bytes+len(data) > o.maxBytes && o.ctx.Err() == nil {
		o.mu.Unlock()
		select {
		case <-o.room:
		case <-o.ctx.Done():
		}
		o.mu.Lock()
	}
	o.q = append(o.q, outMsg{subject: subject, id: msgID, data: data})
	o.bytes += len(data)
	o.mu.Unlock()
	o.signal(o.wake)
}

func (o *Outbox) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Flush waits until everything added so far is stored, or ctx ends.
func (o *Outbox) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	o.mu.Lock()
	o.q = append(o.q, outMsg{flush: ch})
	o.mu.Unlock()
	o.signal(o.wake)
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
		for len(batch) > 0 {
			if batch[0].flush != nil {
				close(batch[0].flush)
				batch = batch[1:]
				continue
			}
			n := 1
			for n < len(batch) && n < outboxWindow && batch[n].flush == nil {
				n++
			}
			if !o.send(batch[:n]) {
				return
			}
			batch = batch[n:]
		}
		select {
		case <-o.wake:
		case <-o.ctx.Done():
			return
		}
	}
}

// send publishes msgs as one window and releases their bytes; false means
// the Outbox is stopping.
func (o *Outbox) send(msgs []outMsg) bool {
	err := o.pub.publishWindow(o.ctx, msgs)
	size := 0
	for _, m := range msgs {
		size += len(m.data)
	}
	o.mu.Lock()
	o.bytes -= size
	if err != nil {
		o.err = err
	}
	o.mu.Unlock()
	o.signal(o.room)
	return err == nil || o.ctx.Err() == nil
}

// acked waits for f's ack until ctx ends.
func acked(ctx context.Context, f jetstream.PubAckFuture) bool {
	select {
	case <-f.Ok():
		return true
	case <-f.Err():
		return false
	default:
	}
	select {
	case <-f.Ok():
		return true
	case <-f.Err():
		return false
	case <-ctx.Done():
		return false
	}
}

// publishWindow publishes msgs asynchronously and waits for their acks.
// From the first one not acknowledged on, each is published again, in
// order, with Publish's retries; the message ids make a copy the server
// already stored harmless. A message the server refuses for good (too
// large) is logged and skipped, so the ones after it still go out.
func (p *Publisher) publishWindow(ctx context.Context, msgs []outMsg) error {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		futures[i], _ = p.js.PublishMsgAsync(p.message(m.subject, m.data), jetstream.WithMsgID(m.id))
	}
	wctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	first := len(msgs)
	for i, f := range futures {
		if f == nil || !acked(wctx, f) {
			first = min(first, i)
		}
	}
	if p.obs != nil && first > 0 {
		p.obs.Published(first)
	}
	var dropped error
	for _, m := range msgs[first:] {
		if err := p.Publish(ctx, m.subject, m.id, m.data); err != nil {
			if ctx.Err() != nil {
				return err
			}
			p.log.Error("dropping message the server refuses", "subject", m.subject, "bytes", len(m.data), "err", err)
			dropped = err
		}
	}
	return dropped
}
