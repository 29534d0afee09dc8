package runnerstream

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Errors a Reader or a Writer wraps; test them with errors.Is. Every
// error of a zip block is also an *ExtractError, every other error of the
// stream (but io.EOF) a *FramingError.
var (
	// ErrLineTooLong: a JSON line is longer than Limits.MaxLine.
	ErrLineTooLong = errors.New("line too long")
	// ErrNotObject: a line is not one JSON object.
	ErrNotObject = errors.New("line is not a JSON object")
	// ErrZipPending: Next was called before the last zip block was read
	// with Unzip or Skip.
	ErrZipPending = errors.New("zip block not consumed: call Unzip or Skip first")
	// ErrNoZip: Unzip or Skip was called when no zip block was announced.
	ErrNoZip = errors.New("no zip block announced")
	// ErrBadHeader: the N of {"zipfile": N} is not a non-negative integer.
	ErrBadHeader = errors.New("bad zipfile header")
	// ErrTruncated: the stream ended inside a zip block's base64.
	ErrTruncated = errors.New("truncated zip block")
	// ErrBadBase64: a zip block's base64 is malformed or decodes to a size
	// other than announced.
	ErrBadBase64 = errors.New("bad base64 in zip block")
	// ErrBadZip: the decoded block is not a readable zip.
	ErrBadZip = errors.New("bad zip")
	// ErrUnsafePath: an entry name could write outside the destination.
	ErrUnsafePath = errors.New("unsafe entry name")
	// ErrUnsafeLink: a symlink entry points outside the destination.
	ErrUnsafeLink = errors.New("unsafe symlink")
	// ErrDuplicate: two entries of a zip have the same name.
	ErrDuplicate = errors.New("duplicate entry")
	// ErrTooLarge: a block or its extracted content exceeds Limits.
	ErrTooLarge = errors.New("too large")
	// ErrTooManyEntries: a zip has more than Limits.MaxEntries entries.
	ErrTooManyEntries = errors.New("too many entries")
	// ErrRatio: an entry decompresses beyond Limits.MaxRatio (zip bomb).
	ErrRatio = errors.New("compression ratio too high")
)

// FramingError is a stream that does not follow the framing: a line that
// is not a JSON object, a line too long, a read error. The stream cannot
// be read further. ansible-runner reports these as "Failed to JSON parse a
// line from transmit stream." (see ErrorStatus).
type FramingError struct {
	// Line is the 1-based number of the line (message) at fault.
	Line int
	// Err is the cause.
	Err error
}

// Error says which line is at fault and why.
func (e *FramingError) Error() string {
	return fmt.Sprintf("runnerstream: line %d: %v", e.Line, e.Err)
}

// Unwrap returns the cause.
func (e *FramingError) Unwrap() error { return e.Err }

// ExtractError is a zip block that could not be decoded or extracted
// safely; Entry names the zip entry at fault when there is one. An error
// in the base64 leaves the stream unreadable; an error in the zip itself
// leaves it at the next message. ansible-runner reports these as "Failed
// to extract private data directory on worker." (see ErrorStatus).
type ExtractError struct {
	// Entry is the name of the zip entry at fault, as the zip spells it;
	// "" when the fault is the block as a whole.
	Entry string
	// Err is the cause.
	Err error
}

// Error says which entry, if any, is at fault and why.
func (e *ExtractError) Error() string {
	if e.Entry == "" {
		return fmt.Sprintf("runnerstream: zip block: %v", e.Err)
	}
	return fmt.Sprintf("runnerstream: zip entry %q: %v", e.Entry, e.Err)
}

// Unwrap returns the cause.
func (e *ExtractError) Unwrap() error { return e.Err }

// Side names the end of a stream a Reader or an error status is for:
// the worker reads the transmit stream, process reads the worker's.
type Side string

// Sides. The zero Side, "", reads either stream (see Reader.Side).
const (
	SideWorker  Side = "worker"
	SideProcess Side = "process"
)

// ErrorStatus returns the status line ansible-runner 2.3.1 sends when it
// cannot read a stream, for err returned by a Reader, as the given side
// would send it (anything but SideProcess means the worker). Send it with
// Writer.JSON, then Writer.EOF, as ansible-runner's worker does:
//
//   - an *ExtractError gives "Failed to extract private data directory on
//     worker." with err's text as result_traceback (ansible-runner puts a
//     Python traceback there); on the process side, where ansible-runner
//     has no message (it crashes), "Failed to extract artifacts from
//     worker stream.";
//   - anything else (a *FramingError, io.EOF before {"eof": ...}, a read
//     error) gives "Failed to JSON parse a line from transmit stream."
//     (worker) or "... from worker stream." (process), without the detail,
//     as 2.3.1 words it.
//
// The line carries no runner_ident: ansible-runner's does not either.
func ErrorStatus(err error, side Side) map[string]any {
	var xe *ExtractError
	if errors.As(err, &xe) {
		text := "Failed to extract private data directory on worker."
		if side == SideProcess {
			text = "Failed to extract artifacts from worker stream."
		}
		return map[string]any{"status": "error", "job_explanation": text, "result_traceback": err.Error()}
	}
	stream := "transmit"
	if side == SideProcess {
		stream = "worker"
	}
	return map[string]any{"status": "error", "job_explanation": "Failed to JSON parse a line from " + stream + " stream."}
}

// Writer writes a stream in ansible-runner's framing: JSON lines and zip
// blocks. Its methods are safe for concurrent use; each message is written
// whole. After a failed write the stream is broken and every later call
// returns the same error.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// JSON writes v, which must encode to a JSON object, as one line. HTML
// escaping is off (ansible output is full of <, > and &); encoding/json
// escapes control characters, so the line never holds a raw newline, and
// a json.RawMessage is compacted.
func (w *Writer) JSON(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("runnerstream: encode: %w", err)
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return fmt.Errorf("runnerstream: encode: %w", ErrNotObject)
	}
	return w.write(buf.Bytes())
}

// EOF writes {"eof": true}, the last message of a stream.
func (w *Writer) EOF() error {
	return w.write([]byte("{\"eof\": true}\n"))
}

// write writes p in one Write, so that a pipe never interleaves it.
func (w *Writer) write(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(p); err != nil {
		w.err = fmt.Errorf("runnerstream: write: %w", err)
	}
	return w.err
}

// writeZipBlock writes {"zipfile": n} and the base64 of the n bytes of r:
// standard alphabet, padded, unwrapped and without a final newline, as
// ansible-runner's reader counts exactly 4*ceil(n/3) characters and then
// reads the next line.
func (w *Writer) writeZipBlock(r io.Reader, n int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	bw := bufio.NewWriterSize(w.w, 64<<10)
	fmt.Fprintf(bw, "{\"zipfile\": %d}\n", n)
	enc := base64.NewEncoder(base64.StdEncoding, bw)
	_, err := io.CopyN(enc, r, n)
	if err == nil {
		err = enc.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		w.err = fmt.Errorf("runnerstream: write zip block: %w", err)
	}
	return w.err
}

// Kind is the type of a message, decided like ansible-runner does: by the
// presence of a key, in an order that depends on the Side.
type Kind int

// Kinds of message.
const (
	KindKwargs    Kind = iota + 1 // {"kwargs": {...}}: the run's arguments
	KindZip                       // {"zipfile": N} and N bytes of zip in base64
	KindEOF                       // {"eof": ...}: the end (any value counts)
	KindStatus                    // {"status": ...}: a status change
	KindEvent                     // any other object: a job event
	KindKeepalive                 // an event whose "event" is "keepalive"
)

var kindNames = map[Kind]string{
	KindKwargs: "kwargs", KindZip: "zipfile", KindEOF: "eof",
	KindStatus: "status", KindEvent: "event", KindKeepalive: "keepalive",
}

// String returns the key or event name that marks the kind.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// framingKeyOrder is the order in which keys decide a message's kind, as
// ansible-runner 2.3.1 tests them: Worker.run (kwargs, zipfile, eof; it
// ignores anything else, which ends as status or event here) and
// Processor.run (status, zipfile, eof, else an event). The zero Side uses
// an order that agrees with both on every line either side sends.
var framingKeyOrder = map[Side][]Kind{
	SideWorker:  {KindKwargs, KindZip, KindEOF, KindStatus},
	SideProcess: {KindStatus, KindZip, KindEOF},
	"":          {KindKwargs, KindStatus, KindZip, KindEOF},
}

// framingClassify returns the kind of a parsed line. A keepalive is told
// apart from events last, as ansible-runner (2.3.2 and later) does; 2.3.1
// knows no keepalive and would take it for an event.
func framingClassify(obj map[string]json.RawMessage, side Side) Kind {
	order, ok := framingKeyOrder[side]
	if !ok {
		order = framingKeyOrder[""]
	}
	for _, k := range order {
		if _, ok := obj[kindNames[k]]; ok {
			return k
		}
	}
	var ev string
	if json.Unmarshal(obj["event"], &ev) == nil && ev == "keepalive" {
		return KindKeepalive
	}
	return KindEvent
}

// Message is one message of a stream.
type Message struct {
	// Kind is the type of the message.
	Kind Kind
	// Raw is the JSON object of the line, without its newline.
	Raw json.RawMessage
	// ZipSize is N of a KindZip message: the size of the zip in bytes.
	ZipSize int64
}

// Reader reads a stream. It is not safe for concurrent use.
//
// Next returns each message; after a KindZip message the caller must read
// the block with Unzip or Skip before calling Next again. At the end of
// the input Next returns io.EOF (unwrapped); a stream that ends before its
// {"eof": ...} message is truncated, which the caller decides. A final line
// without its newline is still read, as ansible-runner's readline does.
type Reader struct {
	// Side selects ansible-runner's order of keys for deciding a message's
	// kind: SideWorker for a transmit stream, SideProcess for a worker's.
	// The zero value uses kwargs, status, zipfile, eof, which agrees with
	// both on everything ansible-runner writes and differs only on lines
	// holding two of those keys. Set it before the first Next.
	Side Side
	// TempDir is where zip blocks are spooled; "" means os.TempDir().
	TempDir string

	br      *bufio.Reader
	lim     Limits
	line    int   // number of lines read
	pending bool  // a zip block was announced and not read yet
	zipSize int64 // its size
	err     error // sticky: the stream cannot be read further
}

// NewReader returns a Reader on r that enforces lim (zero fields take
// their defaults).
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), lim: lim.withDefaults()}
}

// Next returns the next message.
func (r *Reader) Next() (Message, error) {
	if r.err != nil {
		return Message{}, r.err
	}
	if r.pending {
		return Message{}, ErrZipPending
	}
	line, err := r.readLine()
	if err == nil {
		var m Message
		if m, err = r.parse(line); err == nil {
			return m, nil
		}
	}
	r.err = err
	return Message{}, err
}

// readLine returns the next line without its newline, reading at most
// Limits.MaxLine bytes of it into memory.
func (r *Reader) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		n := len(buf) + len(chunk)
		if err == nil {
			n-- // the newline does not count
		}
		if n > r.lim.MaxLine {
			r.line++
			return nil, r.framingError(fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, r.lim.MaxLine))
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			r.line++
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			r.line++
			return buf, nil
		default:
			r.line++
			return nil, r.framingError(fmt.Errorf("read: %w", err))
		}
	}
}

func (r *Reader) framingError(err error) error {
	return &FramingError{Line: r.line, Err: err}
}

// parse decodes a line into a Message; a zip block's header also arms
// Unzip and Skip.
func (r *Reader) parse(line []byte) (Message, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return Message{}, r.framingError(fmt.Errorf("%w: %w", ErrNotObject, err))
	}
	if obj == nil { // the line was null
		return Message{}, r.framingError(ErrNotObject)
	}
	m := Message{
		Kind: framingClassify(obj, r.Side),
		Raw:  json.RawMessage(bytes.Clone(bytes.Trim(line, " \t\r\n"))),
	}
	if m.Kind != KindZip {
		return m, nil
	}
	var n int64
	if err := json.Unmarshal(obj["zipfile"], &n); err != nil || n < 0 {
		return Message{}, &ExtractError{Err: fmt.Errorf("%w: %s", ErrBadHeader, obj["zipfile"])}
	}
	if n > r.lim.MaxZip {
		return Message{}, &ExtractError{Err: fmt.Errorf("%w: zip block of %d bytes, limit %d", ErrTooLarge, n, r.lim.MaxZip)}
	}
	m.ZipSize, r.zipSize, r.pending = n, n, true
	return m, nil
}

// Skip reads the announced zip block and discards it, still checking its
// base64, so that the stream stays in step.
func (r *Reader) Skip() error {
	return r.decodeBlock(io.Discard)
}

// Unzip reads the announced zip block into a temporary file (in TempDir),
// then extracts it into dest, which it creates (mode 0700) if needed.
// Extraction never writes outside dest (see the package documentation).
// Errors are *ExtractError; after one in the zip itself (not its base64)
// the stream can still be read. A zip refused while being checked leaves
// dest untouched; one that fails while being written (a zip bomb, a full
// disk) leaves what was written so far.
func (r *Reader) Unzip(dest string) error {
	if !r.pending {
		return ErrNoZip
	}
	tmp, err := os.CreateTemp(r.TempDir, "runnerstream-*.zip")
	if err != nil {
		return &ExtractError{Err: fmt.Errorf("spool: %w", err)}
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := r.decodeBlock(tmp); err != nil {
		return err
	}
	return extractZip(tmp, r.zipSize, dest, r.lim)
}

// decodeBlock decodes the announced zip block into w. Any error leaves
// the stream out of step, so it is sticky.
func (r *Reader) decodeBlock(w io.Writer) error {
	if !r.pending {
		return ErrNoZip
	}
	r.pending = false
	n := r.zipSize
	src := &framingB64Source{br: r.br, left: 4 * ((n + 2) / 3)}
	dec := base64.NewDecoder(base64.StdEncoding, src)
	got, err := io.Copy(w, io.LimitReader(dec, n))
	if err == nil {
		// Unpadded base64 may hold up to 2 bytes more than announced;
		// ansible-runner's Base64IO ignores them, so do we.
		_, err = io.Copy(io.Discard, dec)
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: stream ended %d base64 characters early", ErrTruncated, src.left)
	case errors.As(err, new(base64.CorruptInputError)):
		err = fmt.Errorf("%w: %w", ErrBadBase64, err)
	case err != nil:
		err = fmt.Errorf("spool: %w", err)
	case got != n || src.left != 0:
		err = fmt.Errorf("%w: decoded %d bytes, header announced %d", ErrBadBase64, got, n)
	}
	if err != nil {
		r.err = &ExtractError{Err: err}
		return r.err
	}
	return nil
}

// framingB64Source yields exactly left non-whitespace bytes of the stream
// and never reads past the last of them, since the next line follows the
// base64 without a separator. Whitespace is dropped, as ansible-runner's
// Base64IO does; ansible-runner itself writes none.
type framingB64Source struct {
	br   *bufio.Reader
	left int64
}

func (s *framingB64Source) Read(p []byte) (int, error) {
	for s.left > 0 {
		if int64(len(p)) > s.left {
			p = p[:s.left]
		}
		n, err := s.br.Read(p)
		kept := 0
		for _, c := range p[:n] {
			switch c {
			case ' ', '\t', '\n', '\r', '\v', '\f':
			default:
				p[kept] = c
				kept++
			}
		}
		s.left -= int64(kept)
		if kept > 0 {
			return kept, nil
		}
		if errors.Is(err, io.EOF) {
			return 0, io.ErrUnexpectedEOF
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.EOF
}
