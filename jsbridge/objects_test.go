package jsbridge

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// A job's file goes into the bucket and comes back whole; an existing file
// is never overwritten and a missing object leaves no file. (Memory is
// measured end to end, in a separate process: here the server shares the
// heap.)
func TestJobObjectsRoundTrip(t *testing.T) {
	s := runServer(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	nc, err := nats.Connect(s.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := OpenJobObjects(ctx, js, 1, time.Hour)
	require.NoError(t, err)

	dir := t.TempDir()
	src := filepath.Join(dir, "job.zip")
	data := make([]byte, 48<<20)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(data)
	require.NoError(t, os.WriteFile(src, data, 0o600))
	want := sha256.Sum256(data)

	name := JobObjectName(Names{Prefix: "ansible", Group: "production"}, "job-1", "job")
	require.Equal(t, "ansible/production/job-1/job.zip", name)
	info, err := objs.PutFile(ctx, name, src)
	require.NoError(t, err)
	require.Equal(t, uint64(48<<20), info.Size)
	dst := filepath.Join(dir, "back.zip")
	require.NoError(t, objs.GetFile(ctx, name, dst))

	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, want, sha256.Sum256(got))
	require.Error(t, objs.GetFile(ctx, name, dst), "an existing file is never overwritten")

	require.NoError(t, objs.Delete(ctx, name))
	require.NoError(t, objs.Delete(ctx, name), "deleting twice is fine")
	require.Error(t, objs.GetFile(ctx, name, filepath.Join(dir, "gone.zip")))
	_, err = os.Stat(filepath.Join(dir, "gone.zip"))
	require.True(t, os.IsNotExist(err), "no file for a missing object")
}
