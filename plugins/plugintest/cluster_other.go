//go:build !linux

package plugintest

import "errors"

// startLocal needs the parent-death signal of Linux to not leak a server.
func startLocal() (string, error) {
	return "", errors.New("a throw-away cluster is only started on Linux")
}
