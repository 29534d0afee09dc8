//go:build unix

package main

import (
	"log/slog"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SIGHUP runs the hooks and does not end the process, also once every
// listener has stopped.
func TestOnSIGHUP(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	called := make(chan string, 4)
	stop1 := onSIGHUP(t.Context(), log, func() { called <- "a" }, func() { called <- "b" })
	stop2 := onSIGHUP(t.Context(), log, func() { called <- "c" })
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	var got []string
	for range 3 {
		select {
		case s := <-called:
			got = append(got, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("hooks not called: %v", got)
		}
	}
	require.ElementsMatch(t, []string{"a", "b", "c"}, got)
	require.Less(t, slices.Index(got, "a"), slices.Index(got, "b"), "one call's hooks run in order")
	stop1()
	stop2()
	// Had SIGHUP its default action (exit) again, the test binary would
	// die, now or during the next tests, and the package would fail.
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	select {
	case s := <-called:
		t.Fatalf("hook %s called after stop", s)
	default:
	}
}
