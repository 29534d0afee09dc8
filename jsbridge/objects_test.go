package jsbridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

var objNames = Names{Prefix: "ansible", Group: "production"}

// newJobObjects opens the bucket on a fresh in-process server. (Memory is
// measured in TestJobObjectsMemoryBounded, in separate processes: here the
// server shares the heap.)
func newJobObjects(t *testing.T) (*JobObjects, jetstream.JetStream) {
	t.Helper()
	s := runServer(t, &server.Options{JetStream: true, StoreDir: t.TempDir()})
	nc, err := nats.Connect(s.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	objs, err := OpenJobObjects(testCtx(t), js, objNames, 1, time.Hour)
	require.NoError(t, err)
	return objs, js
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randomFile(t *testing.T, path string, size int, seed byte) [32]byte {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(data)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return sha256.Sum256(data)
}

func requireSum(t *testing.T, want [32]byte, path string) {
	t.Helper()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, sha256.Sum256(got))
}

func requireNoFile(t *testing.T, path string) {
	t.Helper()
	_, err := os.Stat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "no file at %s", path)
}

func TestJobObjectsName(t *testing.T) {
	require.Equal(t, "ansible/production/job-1/job.zip", objectName(objNames, "job-1", kindJob))
	require.Equal(t, "ansible/production/job-1/artifacts.zip", objectName(objNames, "job-1", kindArtifacts))
}

// A job's files go into the bucket and come back whole, under the names
// derived from the group and task id; an existing file is never
// overwritten.
func TestJobObjectsRoundTrip(t *testing.T) {
	objs, js := newJobObjects(t)
	ctx, dir := testCtx(t), t.TempDir()
	job, arts := filepath.Join(dir, "job.zip"), filepath.Join(dir, "artifacts.zip")
	wantJob := randomFile(t, job, 3<<20+17, 1) // several chunks and a partial one
	wantArts := randomFile(t, arts, 1000, 2)
	require.NoError(t, objs.PutJob(ctx, "job-1", job))
	require.NoError(t, objs.PutArtifacts(ctx, "job-1", arts))

	obs, err := js.ObjectStore(ctx, JobsBucket)
	require.NoError(t, err)
	info, err := obs.GetInfo(ctx, "ansible/production/job-1/job.zip")
	require.NoError(t, err)
	require.Equal(t, uint64(3<<20+17), info.Size)

	back := filepath.Join(dir, "back.zip")
	require.NoError(t, objs.GetJob(ctx, "job-1", back, 0))
	requireSum(t, wantJob, back)
	err = objs.GetJob(ctx, "job-1", back, 0)
	require.ErrorIs(t, err, fs.ErrExist, "an existing file is never overwritten")
	requireSum(t, wantJob, back)

	backArts := filepath.Join(dir, "back-artifacts.zip")
	require.NoError(t, objs.GetArtifacts(ctx, "job-1", backArts, 0))
	requireSum(t, wantArts, backArts)
	fi, err := os.Stat(backArts)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())

	big := filepath.Join(dir, "big.zip")
	err = objs.GetJob(ctx, "job-1", big, 3<<20)
	require.ErrorIs(t, err, runnerstream.ErrTooLarge, "an object over the limit is not fetched")
	require.NoFileExists(t, big)
	require.NoError(t, objs.GetJob(ctx, "job-1", big, 3<<20+17), "the limit itself is fine")
}

// A client binds to the bucket as the workers made it.
func TestJobObjectsBindKeepsSettings(t *testing.T) {
	_, js := newJobObjects(t)
	ctx := testCtx(t)
	_, err := BindJobObjects(ctx, js, Names{Prefix: "ansible", Group: "other"}, 1, time.Minute)
	require.NoError(t, err)
	obs, err := js.ObjectStore(ctx, JobsBucket)
	require.NoError(t, err)
	st, err := obs.Status(ctx)
	require.NoError(t, err)
	require.NotEqual(t, time.Minute, st.TTL(), "the workers' max age stays")
}

// An empty file is an object too.
func TestJobObjectsEmpty(t *testing.T) {
	objs, _ := newJobObjects(t)
	ctx, dir := testCtx(t), t.TempDir()
	empty := filepath.Join(dir, "empty.zip")
	want := randomFile(t, empty, 0, 0)
	require.NoError(t, objs.PutArtifacts(ctx, "e", empty))
	back := filepath.Join(dir, "back.zip")
	require.NoError(t, objs.GetArtifacts(ctx, "e", back, 0))
	requireSum(t, want, back)
}

// A missing object is fs.ErrNotExist (and jetstream.ErrObjectNotFound),
// names the object and leaves no file.
func TestJobObjectsMissing(t *testing.T) {
	objs, _ := newJobObjects(t)
	ctx, dir := testCtx(t), t.TempDir()
	gone := filepath.Join(dir, "gone.zip")
	err := objs.GetJob(ctx, "nope", gone, 0)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound)
	require.ErrorContains(t, err, "ansible/production/nope/job.zip")
	requireNoFile(t, gone)
	require.ErrorIs(t, objs.GetArtifacts(ctx, "nope", gone, 0), fs.ErrNotExist)
	requireNoFile(t, gone)

	require.ErrorIs(t, objs.PutJob(ctx, "nope", filepath.Join(dir, "none.zip")), fs.ErrNotExist)
}

// DeleteJob leaves the artifacts; DeleteAll removes both; deleting what is
// gone is no error.
func TestJobObjectsDelete(t *testing.T) {
	objs, _ := newJobObjects(t)
	ctx, dir := testCtx(t), t.TempDir()
	src := filepath.Join(dir, "src.zip")
	want := randomFile(t, src, 200<<10, 3)
	require.NoError(t, objs.PutJob(ctx, "d", src))
	require.NoError(t, objs.PutArtifacts(ctx, "d", src))

	require.NoError(t, objs.DeleteJob(ctx, "d"))
	require.NoError(t, objs.DeleteJob(ctx, "d"), "deleting twice is fine")
	require.ErrorIs(t, objs.GetJob(ctx, "d", filepath.Join(dir, "job.zip"), 0), fs.ErrNotExist)
	requireNoFile(t, filepath.Join(dir, "job.zip"))
	require.NoError(t, objs.GetArtifacts(ctx, "d", filepath.Join(dir, "arts.zip"), 0))
	requireSum(t, want, filepath.Join(dir, "arts.zip"))

	require.NoError(t, objs.DeleteAll(ctx, "d"))
	require.NoError(t, objs.DeleteAll(ctx, "d"), "deleting twice is fine")
	require.NoError(t, objs.DeleteAll(ctx, "never"), "never stored is fine")
	require.ErrorIs(t, objs.GetArtifacts(ctx, "d", filepath.Join(dir, "arts2.zip"), 0), fs.ErrNotExist)
}

// A put replaces the previous object of the same name.
func TestJobObjectsReplace(t *testing.T) {
	objs, _ := newJobObjects(t)
	ctx, dir := testCtx(t), t.TempDir()
	first, second := filepath.Join(dir, "1.zip"), filepath.Join(dir, "2.zip")
	randomFile(t, first, 300<<10, 4)
	want := randomFile(t, second, 100<<10, 5)
	require.NoError(t, objs.PutJob(ctx, "r", first))
	require.NoError(t, objs.PutJob(ctx, "r", second))
	back := filepath.Join(dir, "back.zip")
	require.NoError(t, objs.GetJob(ctx, "r", back, 0))
	requireSum(t, want, back)
}

// tamperMeta rewrites the stored info of task id's job, as a corrupt or
// hostile writer could.
func tamperMeta(t *testing.T, js jetstream.JetStream, id string, change func(*jetstream.ObjectInfo)) {
	t.Helper()
	ctx := testCtx(t)
	obs, err := js.ObjectStore(ctx, JobsBucket)
	require.NoError(t, err)
	name := objectName(objNames, id, kindJob)
	info, err := obs.GetInfo(ctx, name)
	require.NoError(t, err)
	change(info)
	msg := nats.NewMsg("$O." + JobsBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name)))
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	msg.Data, err = json.Marshal(info)
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx, msg)
	require.NoError(t, err)
}

var zeroDigest = "SHA-256=" + base64.URLEncoding.EncodeToString(make([]byte, 32))

// A job whose chunks do not match its digest or size, or are gone, fails
// and leaves no file.
func TestJobObjectsCorrupt(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*jetstream.ObjectInfo)
		want   string
	}{
		{"digest", func(i *jetstream.ObjectInfo) { i.Digest = zeroDigest }, "digest"},
		{"size", func(i *jetstream.ObjectInfo) { i.Size++ }, "bytes"},
		{"chunks", func(i *jetstream.ObjectInfo) { i.NUID = "nonesuch"; i.Chunks = 3 }, "0 of its 3 chunks"},
		{"empty", func(i *jetstream.ObjectInfo) { i.Size = 0 }, "digest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			objs, js := newJobObjects(t)
			ctx, dir := testCtx(t), t.TempDir()
			src := filepath.Join(dir, "src.zip")
			randomFile(t, src, 300<<10, 6)
			require.NoError(t, objs.PutJob(ctx, "c", src))
			tamperMeta(t, js, "c", c.change)
			back := filepath.Join(dir, "back.zip")
			err := objs.GetJob(ctx, "c", back, 0)
			require.ErrorContains(t, err, c.want)
			require.ErrorContains(t, err, "ansible/production/c/job.zip")
			requireNoFile(t, back)
		})
	}
}

// A get leaves no consumer behind, and one that is cancelled leaves no
// file.
func TestJobObjectsGetCleansUp(t *testing.T) {
	objs, js := newJobObjects(t)
	ctx, dir := testCtx(t), t.TempDir()
	src := filepath.Join(dir, "src.zip")
	randomFile(t, src, 1<<20, 7)
	require.NoError(t, objs.PutJob(ctx, "g", src))
	require.NoError(t, objs.GetJob(ctx, "g", filepath.Join(dir, "back.zip"), 0))
	stream, err := js.Stream(ctx, "OBJ_"+JobsBucket)
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.Consumers, "the ordered consumer is deleted")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, objs.GetJob(cancelled, "g", filepath.Join(dir, "late.zip"), 0), context.Canceled)
	requireNoFile(t, filepath.Join(dir, "late.zip"))
}
