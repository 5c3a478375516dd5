package spill

import (
	"io"
	"os"
)

// FS is the thin file layer spill uses: just what the write and read
// protocols need. Errors are returned as package os returns them.
type FS interface {
	// CreateTemp creates a new file in dir, named by pattern as in
	// os.CreateTemp, open for writing.
	CreateTemp(dir, pattern string) (TempFile, error)
	// Rename atomically replaces newpath with oldpath.
	Rename(oldpath, newpath string) error
	// Remove removes a file.
	Remove(name string) error
	// SyncDir makes the directory's entries (a rename, a new name) durable.
	SyncDir(dir string) error
	// ReadFile returns a file's contents.
	ReadFile(name string) ([]byte, error)
}

// TempFile is a file being written, as returned by FS.CreateTemp.
type TempFile interface {
	io.Writer
	// Name returns the path the file was created at.
	Name() string
	// Sync makes the written contents durable (fsync).
	Sync() error
	Close() error
}

// OS is the FS of the operating system.
type OS struct{}

var _ FS = OS{}

// CreateTemp calls os.CreateTemp.
func (OS) CreateTemp(dir, pattern string) (TempFile, error) { return os.CreateTemp(dir, pattern) }

// Rename calls os.Rename.
func (OS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove calls os.Remove.
func (OS) Remove(name string) error { return os.Remove(name) }

// ReadFile calls os.ReadFile.
func (OS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// SyncDir opens dir and fsyncs it.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
