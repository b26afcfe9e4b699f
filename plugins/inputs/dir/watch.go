package dir

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"

	"github.com/carpipe/carpipe/plugins"
)

var _ plugins.Notifier = (*Dir)(nil)

// Watch signals files created in or written to the folder (and its
// sub-folders with recursive), through the kernel's notifications.
// Removals and renames away are not signalled: they bring nothing to load.
func (d *Dir) Watch(ctx context.Context) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := d.watchTree(w, d.Path); err != nil {
		w.Close()
		return nil, err
	}
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default: // one pending signal says it all
		}
	}
	go func() {
		defer close(out)
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) {
					continue
				}
				if d.Recursive && ev.Has(fsnotify.Create) {
					// A new sub-folder: watch it, and whatever it already holds.
					if st, err := os.Lstat(ev.Name); err == nil && st.IsDir() && !hidden(ev.Name) {
						d.watchTree(w, ev.Name)
					}
				}
				signal()
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				// An overflowed queue lost events: a listing finds what they were.
				signal()
			}
		}
	}()
	return out, nil
}

// watchTree watches root, and its visible sub-folders with recursive.
func (d *Dir) watchTree(w *fsnotify.Watcher, root string) error {
	if !d.Recursive {
		return w.Add(root)
	}
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if !e.IsDir() {
			return nil
		}
		if p != root && hidden(p) {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil && p == root {
			return err
		}
		return nil
	})
}

func hidden(p string) bool { return strings.HasPrefix(filepath.Base(p), ".") }
