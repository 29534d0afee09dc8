// Package retry runs an operation again after transient failures, waiting
// longer each time (exponential backoff with jitter and a cap), until it
// succeeds, fails for good, runs out of attempts or its context ends. It is
// the one retry helper of ansible-worker, over cenkalti/backoff.
package retry

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy says how to wait between attempts.
type Policy struct {
	// Initial is the first wait (default 50 ms).
	Initial time.Duration
	// Max caps every wait (default 2 s).
	Max time.Duration
	// Attempts bounds the number of attempts; 0 means until ctx ends.
	Attempts int
}

// Permanent marks err as one that retrying cannot fix: Do returns it at once.
func Permanent(err error) error { return backoff.Permanent(err) }

// Do runs fn until it returns nil or a Permanent error, the attempts are
// used up, or ctx ends. Before each wait it calls notify, when not nil, with
// the attempt that failed (1, 2, ...) and its error. When ctx ends, the
// returned error holds the last failure and the context's error.
func Do(ctx context.Context, p Policy, fn func(context.Context) error, notify func(attempt int, err error)) error {
	attempt := 0
	var last error
	opts := []backoff.RetryOption{backoff.WithBackOff(p.NewBackoff().b), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, _ time.Duration) {
			if notify != nil {
				notify(attempt, err)
			}
		})}
	if p.Attempts > 0 {
		opts = append(opts, backoff.WithMaxTries(uint(p.Attempts)))
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		last = fn(ctx)
		return struct{}{}, last
	}, opts...)
	if err != nil && ctx.Err() != nil && last != nil && !errors.Is(err, last) {
		return errors.Join(last, err)
	}
	return err
}

// Backoff gives the successive waits of a Policy, for loops that never give
// up (such as pulling tasks): Next after a failure, Reset after a success.
type Backoff struct {
	b *backoff.ExponentialBackOff
}

// NewBackoff returns the waits of p.
func (p Policy) NewBackoff() *Backoff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	if b.InitialInterval <= 0 {
		b.InitialInterval = 50 * time.Millisecond
	}
	b.MaxInterval = p.Max
	if b.MaxInterval <= 0 {
		b.MaxInterval = 2 * time.Second
	}
	b.Multiplier = 2
	b.RandomizationFactor = 0.2
	b.Reset()
	return &Backoff{b: b}
}

// Next returns how long to wait after one more failure.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts again from the initial wait.
func (b *Backoff) Reset() { b.b.Reset() }

// Sleep waits d or until ctx ends; it reports whether the whole wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
