package runnerstream

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unzipKind is what an entry becomes on disk.
type unzipKind int

const (
	unzipFile  unzipKind = iota
	unzipDir             // name ends with "/" or mode says directory
	unzipLink            // mode says symlink; the data is the target
	unzipOther           // FIFO, device, socket: skipped, as ansible-runner's writer skips them
)

// unzipEntry is one checked zip entry.
type unzipEntry struct {
	f       *zip.File
	name    string // cleaned, slash-separated, no trailing slash
	kind    unzipKind
	perm    fs.FileMode // at most 0o777: no setuid, setgid or sticky
	mtime   time.Time
	target  string // symlink target
	existed bool   // a directory that was there before: left as it was
}

// unzipper extracts one zip into a root. All writes go through os.Root,
// so that no name, symlink or race can make them land outside it.
type unzipper struct {
	root   *os.Root
	lim    Limits
	byName map[string]*unzipEntry
	order  []*unzipEntry // zip order
	total  int64         // bytes decompressed so far
	steps  int           // path components walked while checking symlinks
	disk   map[string]unzipDiskLink
}

// unzipDiskLink caches what linkAt found on disk: one Lstat per path.
type unzipDiskLink struct {
	target string
	isLink bool
}

// extractZip extracts the zip of size bytes in ra into dest. The whole
// zip is checked before anything is written: names, duplicates, symlink
// targets, entry count and declared sizes; sizes are then enforced again
// on the bytes actually decompressed.
func extractZip(ra io.ReaderAt, size int64, dest string, lim Limits) error {
	if err := unzipCountEntries(ra, size, lim.MaxEntries); err != nil {
		return &ExtractError{Err: err}
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // we check names ourselves
		return &ExtractError{Err: fmt.Errorf("%w: %w", ErrBadZip, err)}
	}
	if len(zr.File) > lim.MaxEntries {
		return &ExtractError{Err: fmt.Errorf("%w: %d, limit %d", ErrTooManyEntries, len(zr.File), lim.MaxEntries)}
	}
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return &ExtractError{Err: err}
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return &ExtractError{Err: err}
	}
	defer root.Close()
	x := &unzipper{root: root, lim: lim, byName: make(map[string]*unzipEntry, len(zr.File)), disk: map[string]unzipDiskLink{}}
	if err := x.plan(zr.File); err != nil {
		return err
	}
	return x.extract()
}

// unzipCountEntries refuses a zip that may hold more than limit entries
// before archive/zip parses its central directory into memory: archive/zip
// reads directory headers until a bad one, whatever the zip's end record
// says, so the bound is the count of header signatures in the file. Each
// header takes at least 46 bytes, so a small zip needs no scan.
func unzipCountEntries(ra io.ReaderAt, size int64, limit int) error {
	const headerLen = 46
	if size/headerLen <= int64(limit) {
		return nil
	}
	sig := []byte("PK\x01\x02")
	buf := make([]byte, 1<<20)
	count := 0
	for off := int64(0); off < size; off += int64(len(buf) - len(sig) + 1) {
		n, err := ra.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		count += bytes.Count(buf[:n], sig)
		if count > limit {
			return fmt.Errorf("%w: more than %d", ErrTooManyEntries, limit)
		}
		if n < len(buf) {
			break
		}
	}
	return nil
}

// plan checks every entry and records what it becomes.
func (x *unzipper) plan(files []*zip.File) error {
	var declared uint64
	for _, f := range files {
		e, err := unzipClassify(f)
		if err != nil {
			return &ExtractError{Entry: f.Name, Err: err}
		}
		if _, dup := x.byName[e.name]; dup {
			return &ExtractError{Entry: f.Name, Err: ErrDuplicate}
		}
		x.byName[e.name] = e
		x.order = append(x.order, e)
		declared += min(f.UncompressedSize64, 1<<62)
		if declared > uint64(x.lim.MaxUnzipped) {
			return &ExtractError{Entry: f.Name, Err: fmt.Errorf("%w: entries declare more than %d bytes", ErrTooLarge, x.lim.MaxUnzipped)}
		}
	}
	for _, e := range x.order {
		if err := x.checkParents(e); err != nil {
			return &ExtractError{Entry: e.f.Name, Err: err}
		}
	}
	// All targets first: checking one link may go through another.
	for _, e := range x.order {
		if e.kind == unzipLink {
			if err := x.readTarget(e); err != nil {
				return &ExtractError{Entry: e.f.Name, Err: err}
			}
		}
	}
	for _, e := range x.order {
		if e.kind == unzipLink {
			if err := x.checkLink(e); err != nil {
				return &ExtractError{Entry: e.f.Name, Err: err}
			}
		}
	}
	return nil
}

// unzipClassify checks the name of f and decodes its mode and mtime the
// way ansible-runner's unstream_dir does: the unix mode from the high 16
// bits of the external attributes, whatever the creator system.
func unzipClassify(f *zip.File) (*unzipEntry, error) {
	name, isDir, err := unzipCleanName(f.Name)
	if err != nil {
		return nil, err
	}
	attr := f.ExternalAttrs >> 16
	e := &unzipEntry{f: f, name: name, perm: fs.FileMode(attr & 0o777), mtime: unzipModTime(f)}
	switch {
	case isDir || attr&zipIFMT == zipIFDIR:
		e.kind = unzipDir
	case attr&zipIFMT == zipIFLNK:
		e.kind = unzipLink
	case attr&zipIFMT == zipIFREG || attr&zipIFMT == 0:
		e.kind = unzipFile
	default:
		e.kind = unzipOther
	}
	if attr == 0 { // no unix mode recorded (a zip made on Windows)
		e.perm = 0o644
		if e.kind == unzipDir {
			e.perm = 0o755
		}
	}
	return e, nil
}

// unzipCleanName returns the name of an entry without its trailing slash,
// and refuses any name that could leave the destination or that means
// something else on another system: absolute, with a drive letter, a
// backslash, a NUL, or an empty, "." or ".." component.
func unzipCleanName(name string) (string, bool, error) {
	isDir := strings.HasSuffix(name, "/")
	clean := strings.TrimSuffix(name, "/")
	switch {
	case clean == "":
		return "", false, fmt.Errorf("%w: empty name", ErrUnsafePath)
	case strings.HasPrefix(name, "/"):
		return "", false, fmt.Errorf("%w: absolute name", ErrUnsafePath)
	case strings.ContainsAny(name, "\\\x00"):
		return "", false, fmt.Errorf("%w: backslash or NUL in name", ErrUnsafePath)
	case len(name) >= 2 && name[1] == ':' && unzipIsLetter(name[0]):
		return "", false, fmt.Errorf("%w: drive letter in name", ErrUnsafePath)
	}
	for c := range strings.SplitSeq(clean, "/") {
		if c == "" || c == "." || c == ".." {
			return "", false, fmt.Errorf("%w: %q component in name", ErrUnsafePath, c)
		}
	}
	return clean, isDir, nil
}

func unzipIsLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// unzipModTime returns the mtime of f. A zip from Python holds only the
// MS-DOS date, which archive/zip returns as UTC but Python writes (and
// ansible-runner reads back) as local time; a zip from archive/zip also
// holds an exact timestamp, which archive/zip returns in a non-UTC zone.
func unzipModTime(f *zip.File) time.Time {
	m := f.Modified
	if m.Location() != time.UTC {
		return m
	}
	return time.Date(m.Year(), m.Month(), m.Day(), m.Hour(), m.Minute(), m.Second(), 0, time.Local)
}

// checkParents refuses an entry below another entry that is not a
// directory: below a symlink of this zip it would be written through the
// link (the classic "a -> /etc" then "a/passwd").
func (x *unzipper) checkParents(e *unzipEntry) error {
	for i := range len(e.name) {
		if e.name[i] != '/' {
			continue
		}
		if p, ok := x.byName[e.name[:i]]; ok && p.kind != unzipDir {
			if p.kind == unzipLink {
				return fmt.Errorf("%w: below symlink %q of the same zip", ErrUnsafePath, p.f.Name)
			}
			return fmt.Errorf("%w: below %q, which is not a directory", ErrUnsafePath, p.f.Name)
		}
	}
	return nil
}

// readTarget reads the target of a symlink entry.
func (x *unzipper) readTarget(e *unzipEntry) error {
	rc, err := e.f.Open()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadZip, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadZip, err)
	}
	x.total += int64(len(data))
	if len(data) > maxLinkTarget {
		return fmt.Errorf("%w: target longer than %d bytes", ErrUnsafeLink, maxLinkTarget)
	}
	if x.total > unzipMaxLinkBytes { // only targets are read so far
		return fmt.Errorf("%w: symlink targets over %d bytes in all", ErrTooLarge, unzipMaxLinkBytes)
	}
	e.target = string(data)
	return nil
}

// checkLink refuses a symlink whose target is absolute, or leads outside
// the destination once resolved from the link's directory, through the
// other symlinks of the zip and those already in the destination. Its
// target need not exist.
func (x *unzipper) checkLink(e *unzipEntry) error {
	t := e.target
	switch {
	case t == "":
		return fmt.Errorf("%w: empty target", ErrUnsafeLink)
	case strings.HasPrefix(t, "/"):
		return fmt.Errorf("%w: absolute target %s", ErrUnsafeLink, unzipQuote(t))
	case strings.ContainsAny(t, "\\\x00"), len(t) >= 2 && t[1] == ':' && unzipIsLetter(t[0]):
		return fmt.Errorf("%w: target %s has a backslash, NUL or drive letter", ErrUnsafeLink, unzipQuote(t))
	}
	if err := x.resolveInside(path.Dir(e.name), t); err != nil {
		return fmt.Errorf("target %s: %w", unzipQuote(t), err)
	}
	return nil
}

// unzipQuote quotes a symlink target for an error, cut short: a target
// may be 4 KiB of "./".
func unzipQuote(t string) string {
	if len(t) > 80 {
		return strconv.Quote(t[:80]) + "..."
	}
	return strconv.Quote(t)
}

// Bounds on checking symlinks, so that a zip of many long, chained links
// costs memory and time in proportion to a normal one, not quadratically:
//   - unzipMaxHops: symlinks followed while resolving one target, as the
//     kernel's ELOOP (40 on Linux);
//   - unzipMaxSteps: path components walked for the whole zip (a normal
//     link takes a handful; 100000 links of 20 components fit);
//   - unzipMaxLinkBytes: all symlink targets of a zip, held in memory.
const (
	unzipMaxHops      = 40
	unzipMaxSteps     = 2 << 20
	unzipMaxLinkBytes = 16 << 20
)

// resolveInside resolves target from dir the way the kernel would, one
// component at a time, substituting every symlink met. A lexical
// path.Clean is not enough: with "b -> ." in the zip, "b/../x" is
// "x" to Clean but the parent of the destination to the kernel.
func (x *unzipper) resolveInside(dir, target string) error {
	var stack []string
	pending := append(strings.Split(dir, "/"), strings.Split(target, "/")...)
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		if x.steps++; x.steps > unzipMaxSteps {
			return fmt.Errorf("%w: symlinks too long or too many to check", ErrUnsafeLink)
		}
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return fmt.Errorf("%w: leads outside the destination", ErrUnsafeLink)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		p := strings.Join(stack, "/")
		if len(p) > maxLinkTarget {
			return fmt.Errorf("%w: resolves to a path over %d bytes", ErrUnsafeLink, maxLinkTarget)
		}
		t, isLink, err := x.linkAt(p)
		if err != nil || !isLink {
			if err != nil {
				return err
			}
			continue
		}
		if hops++; hops > unzipMaxHops {
			return fmt.Errorf("%w: too many levels of symlinks", ErrUnsafeLink)
		}
		if strings.HasPrefix(t, "/") {
			return fmt.Errorf("%w: goes through %q, an absolute symlink", ErrUnsafeLink, strings.Join(stack, "/"))
		}
		stack = stack[:len(stack)-1]
		pending = append(strings.Split(t, "/"), pending...)
	}
	return nil
}

// linkAt reports whether p will be a symlink once the zip is extracted,
// and its target: an entry of the zip replaces what is on disk, anything
// else stays as it is.
func (x *unzipper) linkAt(p string) (string, bool, error) {
	if e, ok := x.byName[p]; ok && e.kind != unzipOther {
		return e.target, e.kind == unzipLink, nil
	}
	if d, ok := x.disk[p]; ok {
		return d.target, d.isLink, nil
	}
	t, isLink, err := x.diskLinkAt(p)
	if err == nil {
		x.disk[p] = unzipDiskLink{t, isLink}
	}
	return t, isLink, err
}

// diskLinkAt reports whether p is a symlink in the destination now.
func (x *unzipper) diskLinkAt(p string) (string, bool, error) {
	fi, err := x.root.Lstat(p)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		t, err := x.root.Readlink(p)
		if err != nil {
			return "", false, fmt.Errorf("%w: %w", ErrUnsafeLink, err)
		}
		return t, true, nil
	case err == nil, errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return "", false, nil
	default:
		return "", false, fmt.Errorf("%w: cannot check %q: %w", ErrUnsafeLink, p, err)
	}
}

// extract writes the checked entries: directories (parents first), files,
// then symlinks, so that no entry is ever written through a symlink of
// the zip; last, the directories' modes and mtimes (children first), since
// writing into a directory changes its mtime and a read-only directory
// could not be filled.
func (x *unzipper) extract() error {
	var dirs []*unzipEntry
	for _, e := range x.order {
		if e.kind == unzipDir {
			dirs = append(dirs, e)
		}
	}
	slices.SortFunc(dirs, func(a, b *unzipEntry) int { return strings.Compare(a.name, b.name) })
	childrenFirst := slices.Clone(dirs)
	slices.Reverse(childrenFirst)
	steps := []struct {
		entries []*unzipEntry
		do      func(*unzipEntry) error
	}{
		{dirs, x.makeDir},
		{x.ofKind(unzipFile), x.writeFile},
		{x.ofKind(unzipLink), x.makeLink},
		{childrenFirst, x.finishDir},
	}
	for _, s := range steps {
		for _, e := range s.entries {
			if err := s.do(e); err != nil {
				return &ExtractError{Entry: e.f.Name, Err: err}
			}
		}
	}
	return nil
}

// ofKind returns the entries of kind k, in zip order.
func (x *unzipper) ofKind(k unzipKind) []*unzipEntry {
	var out []*unzipEntry
	for _, e := range x.order {
		if e.kind == k {
			out = append(out, e)
		}
	}
	return out
}

// clearSlot makes room for an entry of kind k at name. It reports a
// directory already there; a regular file stays for a file entry (it is
// truncated); anything else (a symlink, a FIFO) is removed, so that the
// write neither follows a link nor blocks on a FIFO.
func (x *unzipper) clearSlot(name string, k unzipKind) (bool, error) {
	fi, err := x.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case fi.IsDir():
		return true, nil
	case fi.Mode().IsRegular() && k == unzipFile:
		return false, nil
	case fi.Mode().IsRegular() && k == unzipDir:
		return false, errors.New("a file is in the way of the directory")
	}
	return false, x.root.Remove(name)
}

// mkParent creates the parent directories of name that no entry of the
// zip creates.
func (x *unzipper) mkParent(name string) error {
	if d := path.Dir(name); d != "." {
		return x.root.MkdirAll(d, 0o755)
	}
	return nil
}

// makeDir creates a directory entry; one already there is left as it is,
// as ansible-runner leaves it (the artifact directory exists beforehand).
func (x *unzipper) makeDir(e *unzipEntry) error {
	isDir, err := x.clearSlot(e.name, unzipDir)
	if err != nil {
		return err
	}
	if isDir {
		e.existed = true
		return nil
	}
	return x.root.MkdirAll(e.name, 0o700)
}

// writeFile writes a file entry, then its mode and mtime.
func (x *unzipper) writeFile(e *unzipEntry) error {
	if err := x.mkParent(e.name); err != nil {
		return err
	}
	isDir, err := x.clearSlot(e.name, unzipFile)
	if err != nil {
		return err
	}
	if isDir {
		return errors.New("a directory is in the way of the file")
	}
	f, err := x.root.OpenFile(e.name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = x.copyEntry(f, e)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := x.root.Chmod(e.name, e.perm); err != nil {
		return err
	}
	return x.root.Chtimes(e.name, e.mtime, e.mtime)
}

// copyEntry decompresses e into w, counting the bytes as they come.
func (x *unzipper) copyEntry(w io.Writer, e *unzipEntry) error {
	rc, err := e.f.Open()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadZip, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, &unzipCounter{r: rc, x: x, e: e})
	return err
}

// makeLink creates a symlink entry. Like ansible-runner, it does not set
// the link's mtime.
func (x *unzipper) makeLink(e *unzipEntry) error {
	if err := x.mkParent(e.name); err != nil {
		return err
	}
	isDir, err := x.clearSlot(e.name, unzipLink)
	if err != nil {
		return err
	}
	if isDir {
		return errors.New("a directory is in the way of the symlink")
	}
	return x.root.Symlink(e.target, e.name)
}

// finishDir sets the mode and mtime of a directory the zip created.
func (x *unzipper) finishDir(e *unzipEntry) error {
	if e.existed {
		return nil
	}
	if err := x.root.Chtimes(e.name, e.mtime, e.mtime); err != nil {
		return err
	}
	return x.root.Chmod(e.name, e.perm)
}

// unzipCounter counts the bytes decompressed from one entry and stops the
// copy, before the bytes are written, once the zip exceeds MaxUnzipped or
// the entry exceeds MaxRatio. The zip's own size fields are not trusted.
type unzipCounter struct {
	r io.Reader
	x *unzipper
	e *unzipEntry
	n int64
}

func (c *unzipCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.x.total += int64(n)
	if c.x.total > c.x.lim.MaxUnzipped {
		return 0, fmt.Errorf("%w: more than %d bytes unzipped", ErrTooLarge, c.x.lim.MaxUnzipped)
	}
	compressed := float64(max(c.e.f.CompressedSize64, 1))
	if c.n > ratioGrace && float64(c.n) > c.x.lim.MaxRatio*compressed {
		return 0, fmt.Errorf("%w: over %d bytes from %d compressed, limit %g:1", ErrRatio, c.n, c.e.f.CompressedSize64, c.x.lim.MaxRatio)
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", ErrBadZip, err)
	}
	return n, err
}
