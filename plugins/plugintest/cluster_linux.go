//go:build linux

package plugintest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	localOnce sync.Once
	localDSN  string
	localErr  error
)

// startLocal starts a throw-away PostgreSQL cluster, once per test binary,
// and returns the DSN of its admin database.
//
// Nothing stops it explicitly, as a helper cannot hook the end of a test
// binary: the server is a child with a parent-death signal (SIGINT, a fast
// shutdown), so the kernel stops it when the test binary exits. Its
// temporary folder stays behind and is removed by a later start.
func startLocal() (string, error) {
	localOnce.Do(func() { localDSN, localErr = startCluster() })
	return localDSN, localErr
}

func startCluster() (string, error) {
	bin, err := postgresBin()
	if err != nil {
		return "", err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "carpipe-pg-")
	if err != nil {
		return "", err
	}
	attr := &syscall.SysProcAttr{}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root and there is no user postgres to run initdb as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = attr
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "logging_collector=off", "-c", "lc_messages=C",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: attr.Credential, Pdeathsig: syscall.SIGINT}
	stderr, err := srv.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := srv.Start(); err != nil {
		return "", fmt.Errorf("starting postgres: %w", err)
	}
	// The server says when it is ready on stderr; reading that beats polling.
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var tail []string
		for sc.Scan() {
			if strings.Contains(sc.Text(), "database system is ready to accept connections") {
				ready <- nil
				_, _ = io.Copy(io.Discard, stderr) // keep the pipe from filling up
				_ = srv.Wait()
				return
			}
			tail = append(tail, sc.Text())
			if len(tail) > 20 {
				tail = tail[1:]
			}
		}
		err := srv.Wait()
		ready <- fmt.Errorf("postgres exited before it was ready (%v):\n%s", err, strings.Join(tail, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			return "", err
		}
	case <-time.After(2 * time.Minute):
		_ = srv.Process.Signal(syscall.SIGINT)
		return "", errors.New("postgres was not ready after 2 minutes")
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
}

// postgresBin finds the folder of initdb and postgres: PATH, else the
// newest /usr/lib/postgresql/N/bin (Debian's layout).
func postgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	major := func(p string) int {
		n, _ := strconv.Atoi(strings.SplitN(filepath.Base(filepath.Dir(filepath.Dir(p))), ".", 2)[0])
		return n
	}
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	if len(dirs) == 0 {
		return "", errors.New("initdb is not installed (not in PATH nor /usr/lib/postgresql/*/bin)")
	}
	return filepath.Dir(dirs[0]), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var staleDir = regexp.MustCompile(`^carpipe-pg-\d+$`)

// removeStale deletes the folders of clusters that earlier test binaries
// left: no postmaster.pid means the server is gone; the age guards a
// cluster that another test binary is creating right now.
func removeStale() {
	entries, _ := os.ReadDir(os.TempDir())
	for _, e := range entries {
		if !e.IsDir() || !staleDir.MatchString(e.Name()) {
			continue
		}
		dir := filepath.Join(os.TempDir(), e.Name())
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			_ = os.RemoveAll(dir)
		}
	}
}
