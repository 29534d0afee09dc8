package runnerstream

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ZipOptions configure Writer.ZipDir.
type ZipOptions struct {
	// Exclude, when set, is asked about every path under the directory,
	// relative and slash-separated ("artifacts", "project/x.yml"); true
	// leaves the path out, and for a directory all it holds.
	Exclude func(rel string) bool
	// TempDir is where the zip is built; "" means os.TempDir().
	TempDir string
}

// Unix file type bits of a zip entry's external attributes, as Python's
// zipfile writes them (st_mode << 16).
const (
	zipIFMT  = 0o170000
	zipIFDIR = 0o040000
	zipIFREG = 0o100000
	zipIFLNK = 0o120000
	// zipCreatorUnix is the "version made by" host that tells readers the
	// high 16 bits of the external attributes are a unix mode.
	zipCreatorUnix = 3 << 8
	// zipMSDOSDir is the MS-DOS directory attribute Python adds to
	// directory entries.
	zipMSDOSDir = 0x10
)

// ZipDir zips dir into a temporary file, never holding the zip in memory,
// then writes {"zipfile": N} and the zip in base64, as ansible-runner's
// stream_dir does. The zip is what ansible-runner reads and writes:
// deflated files, zip64 when needed, relative names, directories as
// entries ("project/"), unix permission bits and mtimes, symlinks as
// entries whose data is the link target, with mode 0o120777; FIFOs,
// sockets and devices are left out. dir itself may be a symlink to a
// directory. If ZipDir fails while building the zip nothing is written.
func (w *Writer) ZipDir(dir string, o ZipOptions) error {
	tmp, err := os.CreateTemp(o.TempDir, "runnerstream-*.zip")
	if err != nil {
		return fmt.Errorf("runnerstream: zip %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := zipWriteDir(tmp, dir, o.Exclude); err != nil {
		return fmt.Errorf("runnerstream: zip %s: %w", dir, err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("runnerstream: zip %s: %w", dir, err)
	}
	return w.writeZipBlock(tmp, size)
}

// zipWriteDir writes the zip of dir to out.
func zipWriteDir(out io.Writer, dir string, exclude func(string) bool) error {
	if dir == "" {
		return errors.New("no directory given")
	}
	// WalkDir does not follow a symlinked root; ansible-runner's os.walk
	// does, and a caller's private data dir may well be one.
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if dir, err = filepath.EvalSymlinks(dir); err != nil {
			return err
		}
	}
	zw := zip.NewWriter(out)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			if !d.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if exclude != nil && exclude(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return zipAddEntry(zw, p, rel, d)
	})
	if err != nil {
		return err
	}
	return zw.Close()
}

// zipAddEntry adds the file p, named rel in the zip.
func zipAddEntry(zw *zip.Writer, p, rel string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	h := &zip.FileHeader{
		Name:           rel,
		CreatorVersion: zipCreatorUnix,
		Modified:       zipModTime(fi.ModTime()),
	}
	mode := fi.Mode()
	switch {
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		h.Method = zip.Store
		h.ExternalAttrs = (zipIFLNK | 0o777) << 16
		fw, err := zw.CreateHeader(h)
		if err == nil {
			_, err = io.WriteString(fw, target)
		}
		return err
	case mode.IsDir():
		h.Name += "/"
		h.Method = zip.Store
		h.ExternalAttrs = (zipIFDIR|zipUnixPerm(mode))<<16 | zipMSDOSDir
		_, err := zw.CreateHeader(h)
		return err
	case mode.IsRegular():
		h.Method = zip.Deflate
		h.ExternalAttrs = (zipIFREG | zipUnixPerm(mode)) << 16
		return zipCopyFile(zw, h, p)
	default:
		// A FIFO would block the reader forever (ansible-runner skips
		// them for that reason); sockets and devices mean nothing on the
		// other side.
		return nil
	}
}

// zipCopyFile adds the content of the regular file p under header h.
func zipCopyFile(zw *zip.Writer, h *zip.FileHeader, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fw, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(fw, f)
	return err
}

// zipUnixPerm returns the unix permission bits of mode, setuid, setgid
// and sticky included, as Python records st_mode (the reader drops them).
func zipUnixPerm(mode fs.FileMode) uint32 {
	perm := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	return perm
}

// zipModTime returns t as the zip records it. archive/zip writes the
// MS-DOS date in t's location plus an exact extended timestamp; Python's
// zipfile reads only the MS-DOS date and takes it as local time, so t must
// be local. Like Python's strict_timestamps=False, times the format cannot
// hold are clamped (MS-DOS dates start in 1980, the extended timestamp is
// a 32-bit count of seconds that ends in 2106).
func zipModTime(t time.Time) time.Time {
	lo := time.Date(1980, 1, 1, 0, 0, 0, 0, time.Local)
	hi := time.Date(2106, 1, 1, 0, 0, 0, 0, time.Local)
	switch {
	case t.Before(lo):
		t = lo
	case t.After(hi):
		t = hi
	}
	return t.Local().Truncate(time.Second)
}
