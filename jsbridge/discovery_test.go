package jsbridge

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// The version a worker registers reads as the binary's: a release without
// its "v", a development build ("devel-<rev>") as a pre-release of 0.0.0,
// and anything the micro framework refuses as 0.0.0-dev; every one of
// them is found.
func TestRegisterWorkerVersion(t *testing.T) {
	s := runServer(t, &server.Options{})
	nc, err := nats.Connect(s.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	names := Names{Prefix: "ansible", Group: "production"}
	for version, want := range map[string]string{
		"v1.4.2":                   "1.4.2",
		"devel-0123456789ab-dirty": "0.0.0-devel-0123456789ab-dirty",
		"devel":                    "0.0.0-devel",
		"my build 7":               devVersion,
	} {
		svc, err := RegisterWorker(nc, names, "w-"+want, version, WorkerOptions{Concurrency: 1})
		require.NoError(t, err, version)
		require.Equal(t, want, svc.Info().Version, version)
		ws, err := Workers(context.Background(), nc, names)
		require.NoError(t, err)
		require.Len(t, ws, 1, version)
		require.Equal(t, want, ws[0].Version)
		require.NoError(t, svc.Stop())
	}
}
