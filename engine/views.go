package engine

import (
	"context"

	"github.com/carpipe/carpipe/plugins"
)

// views creates or replaces the typed views whose schema changed. A
// failure is only logged: views serve people querying the data, and are
// never a reason not to load it.
func (e *Engine) views(ctx context.Context) {
	src, ok := e.router.(plugins.ViewSource)
	v, ok2 := e.ledger.(plugins.Viewer)
	if !ok || !ok2 {
		return
	}
	touched, err := v.ApplyViews(ctx, src.Views())
	for _, name := range touched {
		e.log.Info("view created or replaced", "view", name)
	}
	if err != nil {
		e.log.Warn("typed views not updated; loading goes on", "error", err.Error())
	}
}
