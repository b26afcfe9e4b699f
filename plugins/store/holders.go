package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	sqlitedrv "modernc.org/sqlite"

	"github.com/carpipe/carpipe/plugins"
)

// A holder is alive while it holds a lock that dies with its process, so
// that every process sharing the database can tell a dead holder's leases
// and run at once, without waiting for the leases to expire. On Postgres
// the lock is a session advisory lock on a connection kept for it; on
// SQLite, which serves one machine, an flock on a file beside the database.
// A lock that cannot be checked counts as held: the lease's expiry judges.

// lockSpace is the first key of every holder's advisory lock, so that ours
// stand apart from other applications' in pg_locks (classid); the second
// is hashtext(holder). Two holders whose hashes collide only see each
// other alive, which errs on the side of waiting for expiry.
const lockSpace = 0x63617270 // "carp"

// pgDead is true when no session holds the lock of the holder in column
// col. The test takes the lock shared, so that processes checking one dead
// holder at once do not see each other as it, and for the transaction
// only, so that it goes with the statement.
func pgDead(col string) string {
	return fmt.Sprintf("pg_try_advisory_xact_lock_shared(%d, hashtext(%s))", lockSpace, col)
}

// sqliteDead is SQLite's pgDead: a function of the holders' folder, a
// statement's number (from statements) and a holder, registered with the
// driver for every connection.
const sqliteDead = "carpipe_holder_dead"

func sqliteDeadCall(col string) string { return sqliteDead + "(?, ?, " + col + ")" }

// statements numbers the statements that call sqliteDead.
var statements atomic.Int64

// verdicts keeps what sqliteDead found in the latest statement: the rows
// in a claim's way mostly share a holder, and a check is a few system
// calls.
var verdicts struct {
	sync.Mutex
	stmt int64
	dead map[string]bool
}

func init() {
	sqlitedrv.MustRegisterScalarFunction(sqliteDead, 3, func(_ *sqlitedrv.FunctionContext, args []driver.Value) (driver.Value, error) {
		dir, _ := args[0].(string)
		stmt, _ := args[1].(int64)
		holder, _ := args[2].(string)
		if dir == "" {
			return false, nil
		}
		verdicts.Lock()
		defer verdicts.Unlock()
		if verdicts.stmt != stmt {
			verdicts.stmt, verdicts.dead = stmt, map[string]bool{}
		}
		dead, ok := verdicts.dead[holder]
		if !ok {
			dead = holderDead(dir, holder)
			verdicts.dead[holder] = dead
		}
		return dead, nil
	})
}

// How the Postgres lock's connection is watched: a lost connection is a
// lost lock.
const (
	holdCheck   = time.Second
	holdTimeout = 5 * time.Second
)

var errLockLost = errors.New("the lock that shows this process alive was lost with its database connection; " +
	"other processes may have taken its leases; not claiming until it is taken again")

// Hold takes holder's lock. On Postgres a goroutine checks the lock's
// connection every holdCheck. Once it is found lost, other processes may
// have taken holder's leases and closed its run: Claim then fails for
// holder, and the engine waits as in a database outage, until the lock is
// taken again on a new connection; the leases no one took are holder's
// again then. The files already claimed go on rather than roll back: one
// taken over loads at most twice, and the ledger lets one commit count.
func (s *Store) Hold(ctx context.Context, holder string) (func() error, error) {
	if s.Dialect == dialect.Postgres {
		return s.holdPG(ctx, holder)
	}
	if s.Holders == "" {
		return func() error { return nil }, nil
	}
	release, err := holdFile(ctx, s.Holders, holder)
	if err != nil {
		return nil, plugins.Fatal(fmt.Errorf("holding the lock of %s: %w", holder, err))
	}
	return release, nil
}

// holds are the Postgres locks this Store holds, by holder.
type holds struct {
	mu sync.Mutex
	m  map[string]*pgHold
}

type pgHold struct {
	lost atomic.Bool
	stop context.CancelFunc
	done chan struct{}
}

// lost says whether holder's lock, held through this Store, is lost.
func (s *Store) lost(holder string) bool {
	s.holds.mu.Lock()
	h := s.holds.m[holder]
	s.holds.mu.Unlock()
	return h != nil && h.lost.Load()
}

func (s *Store) holdPG(ctx context.Context, holder string) (func() error, error) {
	var conn *sql.Conn
	var err error
	// A process checking whether holder is alive holds its lock shared for
	// the length of a statement: try again a few times.
	for try := 0; ; try++ {
		conn, err = s.lock(ctx, holder)
		if err == nil || !errors.Is(err, errLockTaken) || try == 5 {
			break
		}
		if !plugins.Wait(ctx, 20*time.Millisecond<<try) {
			err = ctx.Err()
			break
		}
	}
	if err != nil {
		return nil, plugins.Fatal(fmt.Errorf("holding the lock of %s: %w", holder, err))
	}
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	h := &pgHold{stop: stop, done: make(chan struct{})}
	s.holds.mu.Lock()
	if s.holds.m == nil {
		s.holds.m = map[string]*pgHold{}
	}
	s.holds.m[holder] = h
	s.holds.mu.Unlock()
	go s.watchLock(wctx, h, holder, conn)
	return func() error {
		h.stop()
		select {
		case <-h.done:
		case <-time.After(holdTimeout): // a driver stuck on a silent network
		}
		s.holds.mu.Lock()
		delete(s.holds.m, holder)
		s.holds.mu.Unlock()
		return nil
	}, nil
}

var errLockTaken = errors.New("another session holds the lock")

// lock takes holder's lock on a connection kept out of the pool.
func (s *Store) lock(ctx context.Context, holder string) (*sql.Conn, error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var got bool
	err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockSpace, holder).Scan(&got)
	if err == nil && !got {
		err = errLockTaken
	}
	if err != nil {
		discard(conn)
		return nil, err
	}
	return conn, nil
}

// watchLock checks the lock's connection until ctx ends, takes the lock
// again when it is lost, and closes the connection at the end, which ends
// the lock with the session.
func (s *Store) watchLock(ctx context.Context, h *pgHold, holder string, conn *sql.Conn) {
	defer close(h.done)
	t := time.NewTicker(holdCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if conn != nil {
				discard(conn)
			}
			return
		case <-t.C:
		}
		if conn != nil {
			err := alive(ctx, conn)
			if err == nil || ctx.Err() != nil {
				continue
			}
			h.lost.Store(true)
			s.Log.Warn("lost the lock that shows this process alive; its leases may be taken over; not claiming until it is taken again",
				"holder", holder, "error", err.Error())
			go discard(conn) // once the driver gives its query up
			conn = nil
		}
		lctx, cancel := context.WithTimeout(ctx, holdTimeout)
		c, err := s.lock(lctx, holder)
		cancel()
		if err != nil {
			continue // the next tick tries again
		}
		conn = c
		h.lost.Store(false)
		s.Log.Info("lock that shows this process alive taken again; claiming again", "holder", holder)
	}
}

// alive asks the lock's session for a sign of life. It gives up after
// holdTimeout even while the driver still waits on a silent network.
func alive(ctx context.Context, conn *sql.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, holdTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := conn.ExecContext(ctx, `SELECT 1`)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// discard closes a connection rather than put it back in the pool, where
// it would keep its session's lock alive.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
}

// lockPath is holder's lock file in dir: the holder made safe for a file
// name, for people reading the folder, and a digest of it, so that two
// holders never share a file.
func lockPath(dir, holder string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, holder)
	if len(safe) > 100 {
		safe = safe[:100]
	}
	sum := sha256.Sum256([]byte(holder))
	return filepath.Join(dir, safe+"-"+hex.EncodeToString(sum[:4])+lockExt)
}

const lockExt = ".lock"
