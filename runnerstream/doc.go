// Package runnerstream reads and writes the stream of ansible-runner's
// remote jobs, `ansible-runner transmit | ansible-runner worker |
// ansible-runner process`, byte-compatible with ansible-runner 2.3.1.
//
// # Framing
//
// A stream is a sequence of messages, each either a JSON line or a zip
// block:
//
//	json_line := <one JSON object> "\n"
//	zip_block := {"zipfile": N} "\n" <base64 of the N bytes of a zip>
//
// The base64 is standard, padded, unwrapped, and has no newline after it:
// the next JSON line starts right after its last character, and a reader
// knows where that is only by counting 4*ceil(N/3) characters.
//
// The transmit stream (read by the worker) is {"kwargs": {...}}, a zip of
// the private data directory, {"eof": true}. The worker's stream (read by
// process) is status lines ({"status": "starting", ...}), events, a zip of
// the artifact directory, {"eof": true}. The type of a line is decided by
// which key it has, in an order that differs between the two (see Kind,
// Reader.Side). When a worker cannot read its input it sends an error
// status and {"eof": true} (see ErrorStatus).
//
// Writer writes either stream; Reader reads either, bounded by Limits.
//
// # Extraction is safe
//
// ansible-runner extracts what it receives with Python's zipfile and then
// recreates symlinks and permissions itself, which lets a stream write
// anywhere the worker can (a symlink entry "a -> /etc" followed by
// "a/passwd"). Reader.Unzip extracts the same zips, restoring permission
// bits (without setuid, setgid or sticky), mtimes and symlinks, but:
//
//   - the whole zip is checked before anything is written; a name that is
//     absolute, has a drive letter, a backslash, a NUL, or an empty, "."
//     or ".." component, two entries with one name, an entry below a
//     symlink or a file of the zip, a symlink whose target is absolute or
//     resolves (through the zip's and the destination's symlinks) outside
//     the destination: each refuses the whole zip, with an *ExtractError
//     that names the entry (symlinks already in the destination are taken
//     as they are when the zip is checked);
//   - every write goes through an os.Root opened on the destination, so
//     that even a symlink swapped in by another process cannot take a
//     write outside it; symlinks are created last, so no entry is ever
//     written through one;
//   - a zip bomb is stopped by Limits on the entry count, on the total of
//     decompressed bytes and on each entry's compression ratio, counted on
//     the bytes actually decompressed.
//
// FIFOs, devices and sockets in a zip are skipped. A directory that exists
// before extraction keeps its mode and mtime, as with ansible-runner.
package runnerstream
