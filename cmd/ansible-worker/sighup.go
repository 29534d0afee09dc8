package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// onSIGHUP calls every hook, in order, on each SIGHUP until ctx ends or
// stop is called; stop waits for hooks running. It may be called more than
// once: each call adds its own hooks (runAction reopens the log file, serve
// may add the worker's own).
//
// From the first call on, SIGHUP never ends the process, whose default it
// is in Go: `systemctl reload` (kill -HUP) during a start or a shutdown,
// or with nothing to reload, must not stop a worker and its playbooks.
// The playbooks do not get it: the service manager signals the main
// process only, and a worker's supervisors run in their own process groups.
func onSIGHUP(ctx context.Context, log *slog.Logger, hooks ...func()) (stop func()) {
	// Never read nor stopped: a full channel drops the signal, and its
	// being registered keeps the default action (exit) off for good. One
	// per call, a few per process.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
				log.Info("SIGHUP received")
				for _, hook := range hooks {
					hook()
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		cancel()
		<-done
	}
}
