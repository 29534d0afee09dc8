package jsbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/retry"

	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/ansible-worker/ansible-worker/worker"
)

// StatusStore reads and writes TaskStatus in the KV bucket.
type StatusStore struct {
	kv     jetstream.KeyValue
	claims jetstream.KeyValue
	log    *slog.Logger
}

// NewStatusStore wraps the status and claims buckets.
func NewStatusStore(a *Assets, log *slog.Logger) *StatusStore {
	return &StatusStore{kv: a.Status, claims: a.Claims, log: log}
}

// OpenStatusStore binds to existing buckets, for clients that do not
// provision (submit, status, watch).
func OpenStatusStore(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*StatusStore, error) {
	kv, err := js.KeyValue(ctx, StatusBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s (is a worker running?): %w", StatusBucket, err)
	}
	// Clients never claim or mark: the claims bucket stays closed.
	return &StatusStore{kv: kv, log: log}, nil
}

// KV is the underlying status bucket.
func (s *StatusStore) KV() jetstream.KeyValue { return s.kv }

// Put stores st under <group>.<task_id>, retrying until the server takes it
// or ctx ends.
func (s *StatusStore) Put(ctx context.Context, st *schemas.TaskStatus) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode status of %s: %w", st.TaskID, err)
	}
	key := Names{Group: st.Group}.StatusKey(st.TaskID)
	err = retry.Do(ctx, retry.Policy{}, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := s.kv.Put(actx, key, b)
		return err
	}, func(attempt int, err error) {
		if attempt == 1 || attempt%20 == 0 {
			s.log.Warn("status put failed, retrying", "key", key, "attempt", attempt, "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("put status %s: %w", key, err)
	}
	return nil
}

// Create stores st only when the task has no status yet. It reports false
// when one exists.
func (s *StatusStore) Create(ctx context.Context, st *schemas.TaskStatus) (bool, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return false, fmt.Errorf("encode status of %s: %w", st.TaskID, err)
	}
	_, err = s.kv.Create(ctx, Names{Group: st.Group}.StatusKey(st.TaskID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create status of %s: %w", st.TaskID, err)
	}
	return true, nil
}

// Get returns the status of a task; for a task without one, an error that
// wraps both jetstream.ErrKeyNotFound and worker.ErrNoStatus.
func (s *StatusStore) Get(ctx context.Context, group, id string) (*schemas.TaskStatus, error) {
	e, err := s.kv.Get(ctx, Names{Group: group}.StatusKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %w", worker.ErrNoStatus, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", id, err)
	}
	st, err := schemas.ParseTaskStatus(e.Value())
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// Claim records that stream message seq is the submission of task id in
// group. It reports whether seq owns the id: true for the first claim and for
// a redelivery of the same message, false for a later duplicate submission.
func (s *StatusStore) Claim(ctx context.Context, group, id string, seq uint64) (bool, error) {
	if s.claims == nil {
		return true, nil
	}
	key := Names{Group: group}.StatusKey(id)
	val := []byte(strconv.FormatUint(seq, 10))
	_, err := s.claims.Create(ctx, key, val)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("claim task %s: %w", key, err)
	}
	e, err := s.claims.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("read claim of %s: %w", key, err)
	}
	return string(e.Value()) == string(val), nil
}

// MarkCancel records that task id of group was asked to be cancelled, so a
// worker that has not seen the request yet still stops or skips it.
func (s *StatusStore) MarkCancel(ctx context.Context, group, id string) error {
	if s.claims == nil {
		return errors.New("claims bucket not open")
	}
	_, err := s.claims.Put(ctx, Names{Group: group}.CancelKey(id), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return fmt.Errorf("record cancel of %s: %w", id, err)
	}
	return nil
}

// CancelRequested reports whether a cancel was recorded for the task.
func (s *StatusStore) CancelRequested(ctx context.Context, group, id string) (bool, error) {
	if s.claims == nil {
		return false, nil
	}
	_, err := s.claims.Get(ctx, Names{Group: group}.CancelKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read cancel of %s: %w", id, err)
	}
	return true, nil
}

// Transition applies change to the task's current status and stores it only
// if nobody wrote in between (compare and set). change returns false to leave
// the status alone. It reports the status seen last and whether it was
// changed. A task with no status yet is passed as nil.
//
// A read or write that fails for want of an answer (the server away, or
// no leader for the bucket while a cluster fails over) is tried again, as
// Put does, until ctx ends: a task's final status must not be lost to a
// moment of failover. A write that was stored although its answer was lost
// is recognised on the next read.
func (s *StatusStore) Transition(ctx context.Context, group, id string, change func(*schemas.TaskStatus) (*schemas.TaskStatus, bool)) (*schemas.TaskStatus, bool, error) {
	key := Names{Group: group}.StatusKey(id)
	wait := retry.Policy{}.NewBackoff()
	var written []byte // the last write whose answer was lost
	for conflicts, faults := 0, 0; conflicts < 20; {
		cur, rev, stored, err := s.current(ctx, key)
		if err == nil && written != nil && bytes.Equal(stored, written) {
			return cur, true, nil
		}
		var next *schemas.TaskStatus
		if err == nil {
			var ok bool
			if next, ok = change(cur); !ok {
				return cur, false, nil
			}
			if written, err = json.Marshal(next); err != nil {
				return cur, false, err
			}
			err = s.write(ctx, key, written, rev)
		}
		switch {
		case err == nil:
			return next, true, nil
		case casConflict(err):
			conflicts, written = conflicts+1, nil
			continue
		case permanent(err) || errors.Is(err, errBadStatus) || ctx.Err() != nil:
			return cur, false, err
		}
		if faults++; faults == 1 || faults%20 == 0 {
			s.log.Warn("status change failed, retrying", "key", key, "attempt", faults, "err", err)
		}
		select {
		case <-ctx.Done():
			return cur, false, fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(wait.Next()):
		}
	}
	return nil, false, fmt.Errorf("status %s keeps changing", key)
}

// errBadStatus marks a stored status that cannot be read: no retry helps.
var errBadStatus = errors.New("unreadable status")

// current reads the status under key: nil and revision 0 when there is
// none; stored is its raw value.
func (s *StatusStore) current(ctx context.Context, key string) (cur *schemas.TaskStatus, rev uint64, stored []byte, err error) {
	e, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, 0, nil, nil
	case err != nil:
		return nil, 0, nil, fmt.Errorf("read status %s: %w", key, err)
	}
	st, err := schemas.ParseTaskStatus(e.Value())
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w %s: %w", errBadStatus, key, err)
	}
	return &st, e.Revision(), e.Value(), nil
}

// write stores b under key if its revision is still rev (0: no status yet).
func (s *StatusStore) write(ctx context.Context, key string, b []byte, rev uint64) error {
	var err error
	if rev == 0 {
		_, err = s.kv.Create(ctx, key, b)
	} else {
		_, err = s.kv.Update(ctx, key, b, rev)
	}
	if err != nil {
		return fmt.Errorf("write status %s: %w", key, err)
	}
	return nil
}

// casConflict reports whether a write failed because someone else wrote
// the key first.
func casConflict(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &ae) &&
		(ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant))
}

// AddHandBack records that a delivery of the task ended with its worker
// handing it back, so that delivery does not count toward max_deliver.
func (s *StatusStore) AddHandBack(ctx context.Context, group, id string) error {
	if s.claims == nil {
		return nil
	}
	n, err := s.HandBacks(ctx, group, id)
	if err != nil {
		return err
	}
	key := Names{Group: group}.StatusKey(id) + ".handbacks"
	if _, err := s.claims.Put(ctx, key, []byte(strconv.Itoa(n+1))); err != nil {
		return fmt.Errorf("count hand-back of %s: %w", key, err)
	}
	return nil
}

// HandBacks is how many deliveries of the task were handed back.
func (s *StatusStore) HandBacks(ctx context.Context, group, id string) (int, error) {
	if s.claims == nil {
		return 0, nil
	}
	key := Names{Group: group}.StatusKey(id) + ".handbacks"
	e, err := s.claims.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read hand-backs of %s: %w", key, err)
	}
	n, err := strconv.Atoi(string(e.Value()))
	if err != nil {
		return 0, fmt.Errorf("hand-backs of %s: %w", key, err)
	}
	return n, nil
}
