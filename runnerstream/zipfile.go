package runnerstream

import (
	"fmt"
	"io"
	"os"
)

// WriteZip writes the zip of dir to out, as ZipDir zips it but without
// the stream's framing: for stores that take a zip as it is, such as a
// JetStream Object Store.
func WriteZip(out io.Writer, dir string, o ZipOptions) error {
	if err := zipWriteDir(out, dir, o.Exclude); err != nil {
		return fmt.Errorf("runnerstream: zip %s: %w", dir, err)
	}
	return nil
}

// ExtractZip extracts the zip file at path into dest with the checks and
// limits of Reader.Unzip: nothing is written outside dest.
func ExtractZip(path, dest string, lim Limits) error {
	f, err := os.Open(path)
	if err != nil {
		return &ExtractError{Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &ExtractError{Err: err}
	}
	lim = lim.withDefaults()
	if st.Size() > lim.MaxZip {
		return &ExtractError{Err: fmt.Errorf("%w: the zip is %d bytes, more than %d", ErrTooLarge, st.Size(), lim.MaxZip)}
	}
	return extractZip(f, st.Size(), dest, lim)
}
