package jsbridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/worker"
)

// ErrNoTask is returned by Next when no task arrived within the wait.
var ErrNoTask = worker.ErrNoTask

// ErrNotStored is returned by Authentic for an intake message that does not
// match what the tasks stream holds for the group.
var ErrNotStored = worker.ErrNotStored

// Submission is a task the tasks stream has stored.
type Submission = worker.Submission

// settler settles one delivered task message.
type settler struct{ msg jetstream.Msg }

// InProgress tells the server the task is still being worked on, resetting
// its redelivery timer.
func (s settler) InProgress() error { return s.msg.InProgress() }

// Ack removes the task from the queue once the server confirms it.
func (s settler) Ack(ctx context.Context) error { return s.msg.DoubleAck(ctx) }

// Nak hands the task back for redelivery after delay.
func (s settler) Nak(delay time.Duration) error {
	if delay <= 0 {
		return s.msg.Nak()
	}
	return s.msg.NakWithDelay(delay)
}

// Term removes the task from the queue for good, recording why.
func (s settler) Term(reason string) error { return s.msg.TermWithReason(reason) }

// Queue pulls tasks of one group from the shared durable consumer, one at a
// time: a worker asks for a task only when it has a free slot, so no task
// waits in a busy worker's buffer.
type Queue struct {
	nc      *nats.Conn
	names   Names
	cons    jetstream.Consumer
	stream  jetstream.Stream
	subject string
}

// NewQueue wraps the group's durable consumer on the tasks stream; nc
// carries the intake notices (see Notify).
func NewQueue(a *Assets, names Names, nc *nats.Conn) *Queue {
	return &Queue{nc: nc, names: names, cons: a.Consumer, stream: a.Tasks, subject: names.TaskSubject()}
}

// Notify calls fn with the intake notice of every submission stored from
// now on, on one worker of the group (see SubscribeIntake).
func (q *Queue) Notify(fn func(Submission)) (func(), error) {
	sub, err := SubscribeIntake(q.nc, q.names, fn)
	if err != nil {
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Next waits up to wait for one task. It returns ErrNoTask when none came.
func (q *Queue) Next(ctx context.Context, wait time.Duration) (*worker.Delivery, error) {
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
	return &worker.Delivery{
		Submission: Submission{Seq: md.Sequence.Stream, Stored: md.Timestamp, Data: m.Data()},
		Attempt:    int(md.NumDelivered), Settler: settler{msg: m},
	}, nil
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
