package jsbridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoTask is returned by Next when no task arrived within the wait.
var ErrNoTask = errors.New("no task waiting")

// ErrNotStored is returned by Authentic for an intake message that does not
// match what the tasks stream holds for the group.
var ErrNotStored = errors.New("the tasks stream holds no such submission of the group")

// Delivery is one task message handed to this worker.
type Delivery struct {
	msg jetstream.Msg
	// Seq is the message's sequence in the tasks stream; it identifies one
	// submission across redeliveries.
	Seq uint64
	// Attempt is the delivery count, 1 for the first delivery.
	Attempt int
	// Submitted is when the stream stored the task.
	Submitted time.Time
}

// Data is the task request as submitted.
func (d *Delivery) Data() []byte { return d.msg.Data() }

// Headers are the message headers (Nats-Msg-Id, Nmqtt-Pub, ...).
func (d *Delivery) Headers() nats.Header { return d.msg.Headers() }

// InProgress tells the server the task is still being worked on, resetting
// its redelivery timer.
func (d *Delivery) InProgress() error { return d.msg.InProgress() }

// Ack removes the task from the queue once the server confirms it.
func (d *Delivery) Ack(ctx context.Context) error { return d.msg.DoubleAck(ctx) }

// Nak hands the task back for redelivery after delay.
func (d *Delivery) Nak(delay time.Duration) error {
	if delay <= 0 {
		return d.msg.Nak()
	}
	return d.msg.NakWithDelay(delay)
}

// Term removes the task from the queue for good, recording why.
func (d *Delivery) Term(reason string) error { return d.msg.TermWithReason(reason) }

// Queue pulls tasks of one group from the shared durable consumer, one at a
// time: a worker asks for a task only when it has a free slot, so no task
// waits in a busy worker's buffer.
type Queue struct {
	cons    jetstream.Consumer
	stream  jetstream.Stream
	subject string
}

// NewQueue wraps the group's durable consumer on the tasks stream.
func NewQueue(a *Assets, names Names) *Queue {
	return &Queue{cons: a.Consumer, stream: a.Tasks, subject: names.TaskSubject()}
}

// Next waits up to wait for one task. It returns ErrNoTask when none came.
func (q *Queue) Next(ctx context.Context, wait time.Duration) (*Delivery, error) {
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	m, err := q.cons.Next(jetstream.FetchContext(pctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return nil, ErrNoTask
		}
		return nil, fmt.Errorf("pull task: %w", err)
	}
	md, err := m.Metadata()
	if err != nil {
		// Not a stream message: nothing to ack, nothing to run.
		return nil, fmt.Errorf("task message metadata: %w", err)
	}
	return &Delivery{msg: m, Seq: md.Sequence.Stream, Attempt: int(md.NumDelivered), Submitted: md.Timestamp}, nil
}

// Waiting is how many of the group's tasks have not been handed to a worker
// yet.
func (q *Queue) Waiting(ctx context.Context) (uint64, error) {
	info, err := q.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer info: %w", err)
	}
	return info.NumPending, nil
}

// EachStored calls fn with each task of the group still in the stream,
// oldest first, up to limit of them: the waiting ones and those being run.
func (q *Queue) EachStored(ctx context.Context, limit int, fn func(Submission)) error {
	info, err := q.stream.Info(ctx, jetstream.WithSubjectFilter(q.subject))
	if err != nil {
		return fmt.Errorf("tasks stream info: %w", err)
	}
	if info.State.Subjects[q.subject] == 0 {
		return nil
	}
	seq := info.State.FirstSeq
	for range limit {
		m, err := q.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(q.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stored task: %w", err)
		}
		fn(Submission{Seq: m.Sequence, Stored: m.Time, Data: m.Data})
		seq = m.Sequence + 1
	}
	return nil
}

// Authentic checks a submission heard on the intake subject against the
// tasks stream, in one round trip, and returns the stored one: the message
// at sub.Seq must exist, be on the group's task subject and carry exactly
// sub.Data. Anyone may publish on the intake subject; only a message the
// stream republished (or an exact copy of one) passes. A claimed sequence
// the stream has not reached yet, or has already removed, fails with
// ErrNotStored.
func (q *Queue) Authentic(ctx context.Context, sub Submission) (Submission, error) {
	if sub.Seq == 0 {
		return Submission{}, fmt.Errorf("sequence 0: %w", ErrNotStored)
	}
	m, err := q.stream.GetMsg(ctx, sub.Seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Submission{}, fmt.Errorf("sequence %d: %w", sub.Seq, ErrNotStored)
	}
	if err != nil {
		return Submission{}, fmt.Errorf("read stored task %d: %w", sub.Seq, err)
	}
	switch {
	case m.Subject != q.subject:
		return Submission{}, fmt.Errorf("sequence %d is on %s, not %s: %w", sub.Seq, m.Subject, q.subject, ErrNotStored)
	case !bytes.Equal(m.Data, sub.Data):
		return Submission{}, fmt.Errorf("sequence %d holds other data: %w", sub.Seq, ErrNotStored)
	}
	return Submission{Seq: m.Sequence, Stored: m.Time, Data: m.Data}, nil
}

// Remove deletes the group's stored submission seq from the tasks stream, so
// it no longer counts as waiting. seq must come from the stream itself
// (Authentic, EachStored), never from a message anyone could have sent. A
// submission already gone is not an error.
func (q *Queue) Remove(ctx context.Context, seq uint64) error {
	err := q.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return nil
	}
	if _, gerr := q.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil // taken and acked, or removed by another worker
	}
	return fmt.Errorf("remove task %d from the queue: %w", seq, err)
}
