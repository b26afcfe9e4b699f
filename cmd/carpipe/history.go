package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
)

// ledger builds the engine for a command that reads or changes the ledger.
// Without inputs, only the outputs' variables need to be set.
func (c *cli) ledger(f *flags, inputs bool) (*engine.Engine, int, bool) {
	cfg, code, ok := c.loadConfig(f)
	if !ok {
		return nil, code, false
	}
	if !inputs {
		cfg.Inputs = nil
	}
	var unset config.Problems
	for _, p := range append(append([]config.Plugin{}, cfg.Inputs...), cfg.Outputs...) {
		unset = append(unset, p.Unset...)
	}
	if err := unset.Err(); err != nil {
		c.fail(err)
		return nil, exitUsage, false
	}
	e, err := engine.New(c.ctx, cfg, plugins.Default, nil, engine.Options{Logger: c.log, Stdout: c.stdout, Secret: c.mask.add})
	if err != nil {
		c.fail(err)
		return nil, errCode(err), false
	}
	return e, 0, true
}

// history opens the ledger's history for a read-only command.
func (c *cli) history(f *flags) (plugins.History, func(), int, bool) {
	e, code, ok := c.ledger(f, false)
	if !ok {
		return nil, nil, code, false
	}
	h, err := e.History(c.ctx)
	if err != nil {
		e.Close()
		c.fail(err)
		return nil, nil, exitFatal, false
	}
	return h, func() { e.Close() }, 0, true
}

// format is the --format flag of the history commands.
func formatFlag(f *flags) *string {
	return f.String("format", "table", "output: table or json")
}

func (c *cli) checkFormat(format string) bool {
	if format != "table" && format != "json" {
		fmt.Fprintf(c.stderr, "carpipe: --format %q: want table or json\n", format)
		return false
	}
	return true
}

func (c *cli) noArgs(f *flags) bool {
	if f.NArg() > 0 {
		fmt.Fprintf(c.stderr, "carpipe: unexpected argument %q\n", f.Arg(0))
		return false
	}
	return true
}

func runsCmd(c *cli, args []string) int {
	f := c.flags("runs", true)
	n := f.Int("n", 20, "how many of the newest runs to show (0: all)")
	format := formatFlag(f)
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	if !c.checkFormat(*format) || !c.noArgs(f) {
		return exitUsage
	}
	h, done, code, ok := c.history(f)
	if !ok {
		return code
	}
	defer done()
	runs, err := h.Runs(c.ctx, *n)
	if err != nil {
		c.fail(err)
		return exitFatal
	}
	if *format == "json" {
		return c.writeJSON(runsJSON(runs))
	}
	return c.flush(writeRuns(c.stdout, runs))
}

func writeRuns(w io.Writer, runs []plugins.RunSummary) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "no runs yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPIPELINE\tSTARTED\tDURATION\tPROCESSED\tFAILED\tSKIPPED\tUNMATCHED\tAMBIGUOUS\tLEFT\tHELD\tINSERTED\tDUPLICATE\tREJECTED\tSTATUS")
	for _, r := range runs {
		took := "-"
		if !r.Finished.IsZero() {
			took = duration(r.Finished.Sub(r.Started))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t", r.ID, r.Pipeline, stamp(r.Started), took)
		for _, o := range plugins.Outcomes {
			fmt.Fprintf(tw, "%d\t", *r.Count(o))
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\n", r.RecordsInserted, r.RecordsDuplicate, r.RecordsRejected, r.Status)
	}
	return tw.Flush()
}

type runJSON struct {
	ID               int64      `json:"id"`
	Pipeline         string     `json:"pipeline"`
	StartedAt        time.Time  `json:"started_at"`
	FinishedAt       *time.Time `json:"finished_at"`
	Status           string     `json:"status"`
	FilesProcessed   int64      `json:"files_processed"`
	FilesFailed      int64      `json:"files_failed"`
	FilesSkipped     int64      `json:"files_skipped"`
	FilesUnmatched   int64      `json:"files_unmatched"`
	FilesAmbiguous   int64      `json:"files_ambiguous"`
	FilesHeld        int64      `json:"files_held"`
	FilesLeft        int64      `json:"files_left"`
	RecordsInserted  int64      `json:"records_inserted"`
	RecordsDuplicate int64      `json:"records_duplicate"`
	RecordsRejected  int64      `json:"records_rejected"`
}

func runsJSON(runs []plugins.RunSummary) []runJSON {
	out := make([]runJSON, len(runs))
	for i, r := range runs {
		out[i] = runJSON{ID: r.ID, Pipeline: r.Pipeline, StartedAt: r.Started, Status: r.Status,
			FilesProcessed: r.FilesProcessed, FilesFailed: r.FilesFailed, FilesSkipped: r.FilesSkipped,
			FilesUnmatched: r.FilesUnmatched, FilesAmbiguous: r.FilesAmbiguous, FilesHeld: r.FilesHeld,
			FilesLeft: r.FilesLeft, RecordsInserted: r.RecordsInserted,
			RecordsDuplicate: r.RecordsDuplicate, RecordsRejected: r.RecordsRejected}
		if !r.Finished.IsZero() {
			out[i].FinishedAt = &r.Finished
		}
	}
	return out
}

func filesCmd(c *cli, args []string) int {
	f := c.flags("files", true)
	var q plugins.FileQuery
	f.StringVar(&q.Status, "status", "", "only files with this `status`: processed or failed")
	f.Int64Var(&q.Run, "run", 0, "only files of run `ID`")
	f.StringVar(&q.FileType, "type", "", "only files of this file `TYPE`")
	f.StringVar(&q.Input, "input", "", "only files of this input `NAME`")
	since := f.String("since", "", "only files processed since `T`: an RFC 3339 time, a date, or a duration such as 24h or 7d")
	f.IntVar(&q.Limit, "n", 100, "how many of the newest files to show (0: all)")
	format := formatFlag(f)
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	if !c.checkFormat(*format) || !c.noArgs(f) {
		return exitUsage
	}
	if q.Status != "" && q.Status != plugins.StatusProcessed && q.Status != plugins.StatusFailed {
		fmt.Fprintf(c.stderr, "carpipe: --status %q: want processed or failed\n", q.Status)
		return exitUsage
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			c.fail(err)
			return exitUsage
		}
		q.Since = t
	}
	h, done, code, ok := c.history(f)
	if !ok {
		return code
	}
	defer done()
	files, err := h.Files(c.ctx, q)
	if err != nil {
		c.fail(err)
		return exitFatal
	}
	if *format == "json" {
		return c.writeJSON(filesJSON(files))
	}
	return c.flush(writeFiles(c.stdout, files))
}

func writeFiles(w io.Writer, files []plugins.FileEntry) error {
	if len(files) == 0 {
		_, err := fmt.Fprintln(w, "no files")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRUN\tPROCESSED\tINPUT\tPATH\tTYPE\tSTATUS\tINS\tDUP\tREJ\tLOCATION\tREASON")
	for _, f := range files {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", f.ID, f.Run, stamp(f.ProcessedAt),
			f.Input, f.Path, f.FileType, f.Status, f.RecordsInserted, f.RecordsDuplicate, f.RecordsRejected,
			dash(f.Location), f.Error)
	}
	return tw.Flush()
}

type fileJSON struct {
	ID               int64      `json:"id"`
	Run              int64      `json:"run_id"`
	Input            string     `json:"input"`
	Path             string     `json:"path"`
	FileType         string     `json:"file_type"`
	Size             int64      `json:"size"`
	SHA256           string     `json:"sha256"`
	Time             *time.Time `json:"file_time"`
	Status           string     `json:"status"`
	RecordsTotal     int64      `json:"records_total"`
	RecordsInserted  int64      `json:"records_inserted"`
	RecordsDuplicate int64      `json:"records_duplicate"`
	RecordsRejected  int64      `json:"records_rejected"`
	Error            string     `json:"error"`
	Location         string     `json:"location"`
	ProcessedAt      time.Time  `json:"processed_at"`
}

func filesJSON(files []plugins.FileEntry) []fileJSON {
	out := make([]fileJSON, len(files))
	for i, f := range files {
		out[i] = fileJSON(f)
	}
	return out
}

func rejectsCmd(c *cli, args []string) int {
	f := c.flags("rejects", true)
	id := f.Int64("file", 0, "the file's `ID` in the ledger (see carpipe files)")
	format := formatFlag(f)
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	if !c.checkFormat(*format) || !c.noArgs(f) {
		return exitUsage
	}
	if *id <= 0 {
		fmt.Fprintln(c.stderr, "carpipe: rejects needs --file ID (see carpipe files)")
		return exitUsage
	}
	h, done, code, ok := c.history(f)
	if !ok {
		return code
	}
	defer done()
	file, err := h.File(c.ctx, *id)
	if errors.Is(err, plugins.ErrNotFound) {
		fmt.Fprintf(c.stderr, "carpipe: no file %d in the ledger\n", *id)
		return exitUsage
	}
	if err != nil {
		c.fail(err)
		return exitFatal
	}
	rejects, err := h.Rejects(c.ctx, *id)
	if err != nil {
		c.fail(err)
		return exitFatal
	}
	if *format == "json" {
		return c.writeJSON(rejectsJSON(rejects))
	}
	return c.flush(writeRejects(c.stdout, file, rejects))
}

func writeRejects(w io.Writer, f plugins.FileEntry, rejects []plugins.RejectEntry) error {
	fmt.Fprintf(w, "file %d %s/%s (%s, run %d, %s): %d rejected record(s)\n", f.ID, f.Input, f.Path, f.FileType, f.Run, f.Status, len(rejects))
	if len(rejects) == 0 {
		if f.Status == plugins.StatusFailed {
			_, err := fmt.Fprintf(w, "the whole file failed, so none of its records was kept: %s\n", f.Error)
			return err
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tPOINTER\tERROR\tRECORD TEXT")
	for _, r := range rejects {
		for i, e := range r.Errors {
			text := ""
			if i == 0 {
				text = short(r.Payload, 80)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Index, dash(e.Pointer), e.Message, text)
		}
	}
	return tw.Flush()
}

type rejectJSON struct {
	ID      int64                `json:"id"`
	FileID  int64                `json:"file_id"`
	Index   int                  `json:"record_index"`
	Errors  []plugins.FieldError `json:"errors"`
	Payload string               `json:"payload"`
}

func rejectsJSON(rejects []plugins.RejectEntry) []rejectJSON {
	out := make([]rejectJSON, len(rejects))
	for i, r := range rejects {
		out[i] = rejectJSON(r)
	}
	return out
}

func reprocessCmd(c *cli, args []string) int {
	f := c.flags("reprocess", true)
	failed := f.Bool("failed", false, "every failed file that on_failure moved away")
	since := f.String("since", "", "with --failed: only files that failed since `T` (RFC 3339, a date, or a duration such as 24h)")
	if code, ok := c.parse(f, args); !ok {
		return code
	}
	q := engine.ReprocessQuery{Failed: *failed}
	for _, a := range f.Args() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			fmt.Fprintf(c.stderr, "carpipe: %q is not a file ID (see carpipe files --status failed)\n", a)
			return exitUsage
		}
		q.IDs = append(q.IDs, id)
	}
	switch {
	case len(q.IDs) == 0 && !*failed:
		fmt.Fprintln(c.stderr, "carpipe: name the files to reprocess by ID, or give --failed")
		return exitUsage
	case *since != "" && !*failed:
		fmt.Fprintln(c.stderr, "carpipe: --since goes with --failed")
		return exitUsage
	case *since != "":
		t, err := parseSince(*since, time.Now())
		if err != nil {
			c.fail(err)
			return exitUsage
		}
		q.Since = t
	}
	e, code, ok := c.ledger(f, true)
	if !ok {
		return code
	}
	defer e.Close()
	done, err := e.Reprocess(c.ctx, q)
	if err != nil {
		c.fail(err)
		return exitFatal
	}
	var back int
	for _, p := range done {
		name := fmt.Sprintf("file %d", p.File.ID)
		if p.File.Input != "" {
			name += " " + p.File.Input + "/" + p.File.Path
		}
		switch {
		case p.Err != nil:
			fmt.Fprintf(c.stdout, "%s: not put back: %v\n", name, p.Err)
		case p.InPlace:
			back++
			fmt.Fprintf(c.stdout, "%s: already in place\n", name)
		default:
			back++
			note := ""
			if p.Note != "" {
				note = " (" + p.Note + ")"
			}
			fmt.Fprintf(c.stdout, "%s: put back from %s to %s%s\n", name, p.From, p.Path, note)
		}
	}
	switch {
	case len(done) == 0:
		fmt.Fprintln(c.stdout, "no failed file to put back")
	case back > 0:
		fmt.Fprintf(c.stdout, "%d of %d file(s) ready: the next run loads them\n", back, len(done))
	}
	if back < len(done) {
		return exitPartial
	}
	return exitOK
}

// parseSince reads an RFC 3339 time, a date (local midnight), or a
// duration back from now such as 90m, 24h or 7d.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2024-05-01T10:00:00Z), a date (2024-05-01) or a duration such as 24h or 7d", s)
}

func (c *cli) writeJSON(v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return c.flush(enc.Encode(v))
}

func (c *cli) flush(err error) int {
	if err != nil {
		c.fail(err)
		return exitFatal
	}
	return exitOK
}

// stamp shows a time in the local zone, to the second.
func stamp(t time.Time) string { return t.Local().Format(time.DateTime) }

// duration rounds to what a person reads: 13ms, 1.52s, 2m3s.
func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// short puts text on one line and cuts it to n characters.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
