package jsbridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/runnerstream"
)

// JobsBucket is the Object Store bucket that carries the private data
// directories of runner jobs to the workers and their artifacts back.
const JobsBucket = "ansible_jobs"

// The kinds of file a runner job has in JobsBucket.
const (
	kindJob       = "job"
	kindArtifacts = "artifacts"
)

// JobObjects stores the files of the runner jobs of one group in
// JobsBucket. Files go in and out in chunks, never whole in memory.
type JobObjects struct {
	js    jetstream.JetStream
	obs   jetstream.ObjectStore
	names Names
}

// jobsStoreConfig is JobsBucket's configuration: TTL maxAge (0: none),
// replicas, file storage. The TTL makes the server remove the files of a
// job whose artifacts are never fetched.
func jobsStoreConfig(replicas int, maxAge time.Duration) jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:      JobsBucket,
		Description: "ansible-worker: private data directories of runner jobs and their artifacts",
		TTL:         maxAge,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// OpenJobObjects is how a worker opens JobsBucket for the group names: it
// creates it when missing (TTL maxAge, 0 none; replicas; file storage),
// and binds to it as it is when it exists, unless its TTL, replicas or
// storage contradict these: then the error is a *ConflictError (the
// provision command changes them, never a worker).
func OpenJobObjects(ctx context.Context, js jetstream.JetStream, names Names, replicas int, maxAge time.Duration) (*JobObjects, error) {
	return openJobObjects(ctx, js, names, ProvisionConfig{Names: names, Replicas: replicas, JobsMaxAge: maxAge}, modeCheck)
}

// BindJobObjects binds to JobsBucket as it is, and creates it as
// OpenJobObjects does when it does not exist: a client must not change the
// settings the workers gave it.
func BindJobObjects(ctx context.Context, js jetstream.JetStream, names Names, replicas int, maxAge time.Duration) (*JobObjects, error) {
	return openJobObjects(ctx, js, names, ProvisionConfig{Names: names, Replicas: replicas, JobsMaxAge: maxAge}, modeBind)
}

func openJobObjects(ctx context.Context, js jetstream.JetStream, names Names, pc ProvisionConfig, m mode) (*JobObjects, error) {
	p := newProvisioner(js, pc, nil)
	if _, err := p.runAssets(ctx, m, []*asset{p.jobs()}); err != nil {
		return nil, fmt.Errorf("object store %s: %w", JobsBucket, err)
	}
	obs, err := js.ObjectStore(ctx, JobsBucket)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", JobsBucket, err)
	}
	return NewJobObjects(js, obs, names), nil
}

// NewJobObjects stores the runner jobs of the group names in obs, the
// JobsBucket that Bind or Provision bound (Assets.Jobs).
func NewJobObjects(js jetstream.JetStream, obs jetstream.ObjectStore, names Names) *JobObjects {
	return &JobObjects{js: js, obs: obs, names: names}
}

// objectName is where a job's file of the given kind is kept: derived from
// the prefix, group and (validated) task id, never chosen by a submitter.
func objectName(names Names, id, kind string) string {
	return names.Prefix + "/" + names.Group + "/" + id + "/" + kind + ".zip"
}

// PutJob stores the zip at path as task id's job (the private data
// directory).
func (o *JobObjects) PutJob(ctx context.Context, id, path string) error {
	return o.put(ctx, objectName(o.names, id, kindJob), path)
}

// GetJob writes task id's job to a new file at path (O_EXCL, mode 0600),
// removed again on any error; the digest is checked. No such object: an
// error wrapping fs.ErrNotExist; one larger than maxSize bytes (0: no
// limit) is not fetched: an error wrapping runnerstream.ErrTooLarge.
func (o *JobObjects) GetJob(ctx context.Context, id, path string, maxSize int64) error {
	return o.get(ctx, objectName(o.names, id, kindJob), path, maxSize)
}

// PutArtifacts stores the zip at path as task id's artifacts.
func (o *JobObjects) PutArtifacts(ctx context.Context, id, path string) error {
	return o.put(ctx, objectName(o.names, id, kindArtifacts), path)
}

// GetArtifacts writes task id's artifacts to a new file at path, as GetJob
// does.
func (o *JobObjects) GetArtifacts(ctx context.Context, id, path string, maxSize int64) error {
	return o.get(ctx, objectName(o.names, id, kindArtifacts), path, maxSize)
}

// DeleteJob removes task id's job; its artifacts stay for the submitter.
// A missing object is no error.
func (o *JobObjects) DeleteJob(ctx context.Context, id string) error {
	return o.delete(ctx, objectName(o.names, id, kindJob))
}

// DeleteAll removes task id's job and artifacts. Missing objects are no
// error.
func (o *JobObjects) DeleteAll(ctx context.Context, id string) error {
	return errors.Join(o.DeleteJob(ctx, id),
		o.delete(ctx, objectName(o.names, id, kindArtifacts)))
}

// put streams the file at path into object name. The library's Put is
// bounded already: it reuses one chunk buffer and writes each chunk into
// the connection before reading the next (a 200 MB put peaks at about
// 16 MB RSS), so it needs no knob; its in-flight acks carry no data, and
// the JetStream context it publishes with is its own, which
// jetstream.WithPublishAsyncMaxPending on ours would not reach anyway.
func (o *JobObjects) put(ctx context.Context, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	defer f.Close()
	if _, err := o.obs.Put(ctx, jetstream.ObjectMeta{Name: name}, f); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	return nil
}

// get streams object name into a new file at path; the file is removed
// again if anything fails, so a partial or corrupt file is never left.
//
// It does not use the library's Get: that pushes the chunks through an
// ordered push consumer, whose flow control lets the server run up to
// 32 MB ahead of a slow writer and which has no knob to bound it (a 200 MB
// get into a 100 MB/s writer peaks at about 70 MB RSS). Pulling a few
// chunks at a time keeps it under 20 MB.
func (o *JobObjects) get(ctx context.Context, name, path string, maxSize int64) error {
	info, err := o.obs.GetInfo(ctx, name)
	if err != nil {
		return getError(name, err)
	}
	if maxSize > 0 && info.Size > uint64(maxSize) {
		return fmt.Errorf("get %s: %w: %d bytes, the limit is %d", name, runnerstream.ErrTooLarge, info.Size, maxSize)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	if err := errors.Join(o.copyObject(ctx, info, f), f.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("get %s into %s: %w", name, path, err)
	}
	return nil
}

// getError wraps err for object name; a missing object also matches
// fs.ErrNotExist, so callers need not know about JetStream.
func getError(name string, err error) error {
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("get %s: %w (%w)", name, fs.ErrNotExist, err)
	}
	return fmt.Errorf("get %s: %w", name, err)
}

// delete removes object name; one that is gone already is no error.
func (o *JobObjects) delete(ctx context.Context, name string) error {
	err := o.obs.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// The Object Store's layout on the wire (ADR-20): the bucket's stream and
// the subject of one object's chunks.
const (
	jobsStream       = "OBJ_" + JobsBucket
	jobsChunkSubject = "$O." + JobsBucket + ".C."
)

// chunksInFlight bounds the chunks pulled but not yet written: 8 of the
// library's 128 KiB. The library's Get pushes them instead, with the
// server's flow control allowing up to 32 MB pending in the client.
const chunksInFlight = 8

// chunkWait is how long a get waits for the next chunk: a chunk that
// never comes (purged, or expired before the object's info) fails the get
// instead of hanging it for as long as ctx allows.
const chunkWait = 30 * time.Second

// copyObject writes the object's chunks to w, checking their size and
// SHA-256 digest against info as the library's Get does.
func (o *JobObjects) copyObject(ctx context.Context, info *jetstream.ObjectInfo, w io.Writer) error {
	if info.NUID == "" || (info.Opts != nil && info.Opts.Link != nil) {
		return jetstream.ErrBadObjectMeta // never put by JobObjects
	}
	want, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := o.copyChunks(ctx, info, io.MultiWriter(w, h))
	switch {
	case err != nil:
		return err
	case n != info.Size:
		return fmt.Errorf("%d bytes, the object has %d", n, info.Size)
	case !bytes.Equal(h.Sum(nil), want):
		return jetstream.ErrDigestMismatch
	}
	return nil
}

// copyChunks pulls the object's chunks, a few at a time, with an ordered
// consumer and writes them to w in order.
func (o *JobObjects) copyChunks(ctx context.Context, info *jetstream.ObjectInfo, w io.Writer) (uint64, error) {
	if info.Size == 0 {
		return 0, nil // an empty object has no chunks
	}
	cons, err := o.js.OrderedConsumer(ctx, jobsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:   []string{jobsChunkSubject + info.NUID},
		MaxResetAttempts: 5, // a lost server fails the get in about 25 s
	})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(chunksInFlight))
	if err != nil {
		return 0, err
	}
	defer o.stopChunks(it, cons)
	if p := cons.CachedInfo().NumPending; p != uint64(info.Chunks) {
		return 0, fmt.Errorf("%d of its %d chunks stored", p, info.Chunks)
	}
	return writeChunks(ctx, it, w)
}

// writeChunks writes each chunk the iterator returns to w, until the last.
func writeChunks(ctx context.Context, it jetstream.MessagesContext, w io.Writer) (uint64, error) {
	var n uint64
	for {
		msg, err := nextChunk(ctx, it)
		if err != nil {
			return n, err
		}
		if _, err := w.Write(msg.Data()); err != nil {
			return n, err
		}
		n += uint64(len(msg.Data()))
		meta, err := msg.Metadata()
		if err != nil {
			return n, err
		}
		if meta.NumPending == 0 {
			return n, nil
		}
	}
}

// nextChunk waits at most chunkWait for the next chunk.
func nextChunk(ctx context.Context, it jetstream.MessagesContext) (jetstream.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, chunkWait)
	defer cancel()
	msg, err := it.Next(jetstream.NextContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("next chunk: %w", err)
	}
	return msg, nil
}

// stopChunks stops pulling and deletes the consumer at once rather than
// leaving it to its inactivity threshold; failing to is harmless.
func (o *JobObjects) stopChunks(it jetstream.MessagesContext, cons jetstream.Consumer) {
	it.Stop()
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	// Not the caller's context: a cancelled get should still clean up.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = o.js.DeleteConsumer(ctx, jobsStream, info.Name)
}
