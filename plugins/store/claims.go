package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/carpipe/carpipe/plugins"
)

var _ plugins.Claimer = (*Store)(nil)

// Each claim operation is one SQL statement on the claims table that Ent
// created, for any number of files. It is written by hand because it must
// compare and set many rows in one round trip, and because on Postgres the
// server's clock (now()) must judge every lease: replicas on different
// machines do not share a clock. SQLite serves one machine, so the
// process's clock judges there; the driver writes its times in UTC, in a
// form that sorts as text.

// lazyCommit makes a statement's own transaction commit without waiting
// for the WAL flush, which would otherwise be most of a claim's cost. Safe:
// a server crash may forget the latest claims or releases, and a forgotten
// claim only lets two processes read one file, after which the ledger's
// unique index still lets one commit; a forgotten release expires.
const lazyCommit = `(SELECT set_config('synchronous_commit', 'off', true)) AS lazy`

// upsert takes a free row, an expired one, one the holder already has, or
// one whose holder is dead. The liveness test runs only on a conflict with
// another holder's unexpired lease, so that claiming free files costs
// nothing more.
const upsert = ` ON CONFLICT (input, path_key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
	WHERE claims.expires_at < %s OR claims.holder = excluded.holder OR %s RETURNING path_key`

// Paths are claimed in sorted order, so that two holders claiming
// overlapping sets wait on each other in the same order and never deadlock.
var pgClaim = `INSERT INTO claims (input, path, path_key, holder, expires_at)
	SELECT $1, p.path, p.key, $2, now() + make_interval(secs => $3) FROM unnest($4::text[], $5::text[]) AS p(path, key), ` + lazyCommit + `
	ORDER BY p.key` + fmt.Sprintf(upsert, "now()", pgDead("claims.holder"))

var sqliteUpsert = fmt.Sprintf(upsert, "?", sqliteDeadCall("claims.holder"))

// sqliteChunk keeps a statement's variables far below SQLite's limit.
const sqliteChunk = 500

// Claim leases the paths to holder and returns those it got.
func (s *Store) Claim(ctx context.Context, holder, input string, paths []string, ttl time.Duration) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	if s.lost(holder) {
		return nil, claimErr("claiming", errLockLost)
	}
	paths = slices.Sorted(slices.Values(paths))
	if s.Dialect == dialect.Postgres {
		keys := pathKeys(paths)
		got, err := s.returning(ctx, "claiming", pgClaim, input, holder, ttl.Seconds(), pq.Array(pathTexts(paths)), pq.Array(keys))
		return byKey(paths, keys, got), err
	}
	s.write.Lock()
	defer s.write.Unlock()
	now := time.Now().UTC()
	var got []string
	for chunk := range slices.Chunk(paths, sqliteChunk) {
		var q strings.Builder
		q.WriteString("INSERT INTO claims (input, path, path_key, holder, expires_at) VALUES ")
		args := make([]any, 0, 5*len(chunk)+1)
		for i, p := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?)")
			args = append(args, input, PathText(p), PathKey(p), holder, now.Add(ttl))
		}
		q.WriteString(sqliteUpsert)
		some, err := s.returning(ctx, "claiming", q.String(), append(args, now, s.Holders, statements.Add(1))...)
		if err != nil {
			return got, err
		}
		got = append(got, some...)
	}
	return byKey(paths, pathKeys(paths), got), nil
}

func pathKeys(paths []string) []string {
	keys := make([]string, len(paths))
	for i, p := range paths {
		keys[i] = PathKey(p)
	}
	return keys
}

func pathTexts(paths []string) []string {
	texts := make([]string, len(paths))
	for i, p := range paths {
		texts[i] = PathText(p)
	}
	return texts
}

// byKey maps the keys a statement returned back to the paths they key.
func byKey(paths, keys, got []string) []string {
	want := make(map[string]bool, len(got))
	for _, k := range got {
		want[k] = true
	}
	var out []string
	for i, k := range keys {
		if want[k] {
			out = append(out, paths[i])
		}
	}
	return out
}

// returning runs a statement and collects the paths it returns.
func (s *Store) returning(ctx context.Context, what, q string, args ...any) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, claimErr(what, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, claimErr(what, err)
		}
		out = append(out, p)
	}
	return out, claimErr(what, rows.Err())
}

// Renew extends holder's leases. On SQLite, while one of this process's
// files holds the write lock it skips the turn: no other process can take
// a lease over while that lock is held anyway.
func (s *Store) Renew(ctx context.Context, holder string, ttl time.Duration) error {
	var err error
	if s.Dialect == dialect.Postgres {
		_, err = s.DB.ExecContext(ctx, `UPDATE claims SET expires_at = now() + make_interval(secs => $2) WHERE holder = $1`, holder, ttl.Seconds())
	} else {
		if !s.write.TryLock() {
			return nil
		}
		defer s.write.Unlock()
		_, err = s.DB.ExecContext(ctx, `UPDATE claims SET expires_at = ? WHERE holder = ?`, time.Now().UTC().Add(ttl), holder)
	}
	return claimErr("renewing leases", err)
}

// Release deletes holder's leases on the paths.
func (s *Store) Release(ctx context.Context, holder, input string, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if s.Dialect == dialect.Postgres {
		_, err := s.DB.ExecContext(ctx, `DELETE FROM claims USING `+lazyCommit+`
			WHERE input = $1 AND holder = $2 AND path_key = ANY($3::text[])`, input, holder, pq.Array(pathKeys(paths)))
		return claimErr("releasing leases", err)
	}
	s.write.Lock()
	defer s.write.Unlock()
	for chunk := range slices.Chunk(paths, sqliteChunk) {
		args := []any{input, holder}
		for _, p := range chunk {
			args = append(args, PathKey(p))
		}
		q := `DELETE FROM claims WHERE input = ? AND holder = ? AND path_key IN (?` + strings.Repeat(",?", len(chunk)-1) + `)`
		if _, err := s.DB.ExecContext(ctx, q, args...); err != nil {
			return claimErr("releasing leases", err)
		}
	}
	return nil
}

// ReleaseAll deletes every lease of holder.
func (s *Store) ReleaseAll(ctx context.Context, holder string) error {
	var err error
	if s.Dialect == dialect.Postgres {
		_, err = s.DB.ExecContext(ctx, `DELETE FROM claims WHERE holder = $1`, holder)
	} else {
		s.write.Lock()
		defer s.write.Unlock()
		_, err = s.DB.ExecContext(ctx, `DELETE FROM claims WHERE holder = ?`, holder)
	}
	return claimErr("releasing leases", err)
}

// Sweep deletes the leases that expired (those of files moved away, never
// to be claimed again) and those of dead holders, and closes the runs of
// dead holders as aborted. Each holder is checked once.
func (s *Store) Sweep(ctx context.Context) error {
	if s.Dialect == dialect.Postgres {
		_, err := s.DB.ExecContext(ctx, `WITH dead AS (
				SELECT holder FROM (SELECT holder FROM claims UNION SELECT holder FROM runs WHERE status = 'running' AND holder <> '') AS h
				WHERE `+pgDead("holder")+`
			), gone AS (
				DELETE FROM claims WHERE expires_at < now() OR holder IN (SELECT holder FROM dead)
			)
			UPDATE runs SET status = 'aborted', finished_at = now() WHERE status = 'running' AND holder IN (SELECT holder FROM dead)`)
		return claimErr("sweeping the leases and runs of dead processes", err)
	}
	s.write.Lock()
	defer s.write.Unlock()
	now := time.Now().UTC()
	_, err := s.DB.ExecContext(ctx, `DELETE FROM claims WHERE expires_at < ?
		OR holder IN (SELECT holder FROM (SELECT DISTINCT holder FROM claims) WHERE `+sqliteDeadCall("holder")+`)`, now, s.Holders, statements.Add(1))
	if err == nil {
		_, err = s.DB.ExecContext(ctx, `UPDATE runs SET status = 'aborted', finished_at = ?
			WHERE status = 'running' AND holder IN (SELECT DISTINCT holder FROM runs WHERE status = 'running' AND holder <> '' AND `+sqliteDeadCall("holder")+`)`,
			now, s.Holders, statements.Add(1))
	}
	if err == nil && s.Holders != "" {
		sweepLockFiles(s.Holders)
	}
	return claimErr("sweeping the leases and runs of dead processes", err)
}

// claimErr: claims only touch the database, so any error is the database's.
func claimErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return plugins.Fatal(fmt.Errorf("%s: %w", what, err))
}
