//go:build !unix

package pgtest

import (
	"errors"
	"os"
	"os/exec"
)

var errNoUnix = errors.New("pgtest starts its own PostgreSQL only on unix systems; set " + EnvDSN)

type runAs struct{}

func serverRunAs() (*runAs, error)      { return nil, errNoUnix }
func (*runAs) apply(*exec.Cmd, bool)    {}
func (*runAs) chown(string) error       { return nil }
func (*runAs) describe() string         { return "" }
func lockNew(string) (*os.File, error)  { return nil, errNoUnix }
func tryLock(*os.File) (bool, error)    { return false, errNoUnix }
func processAlive(int) bool             { return true }
func quitProcess(int) error             { return errNoUnix }
func killProcess(int) error             { return errNoUnix }
func processCmdline(int) (string, bool) { return "", false }
