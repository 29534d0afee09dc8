package main

import (
	"context"
	"log/slog"
	"net"
	"os"
)

// notifyWhenReady tells the service manager that the worker is ready, the
// systemd way (sd_notify: "READY=1" on the datagram socket $NOTIFY_SOCKET),
// once ready is closed. Units of Type=notify, and the tests, wait for it.
func notifyWhenReady(ctx context.Context, ready <-chan struct{}, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-ready:
	}
	path := os.Getenv(envNotifySocket)
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		log.Warn("cannot tell the service manager the worker is ready", "err", err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("READY=1")); err != nil {
		log.Warn("cannot tell the service manager the worker is ready", "err", err)
	}
}
