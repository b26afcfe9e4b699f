package schemas

import "github.com/carpipe/carpipe/plugins"

// TEMPORARY (branch cli): the schemas branch writes the real Tables; the
// lead deletes this file at merge.
func (s *Set) Tables() []plugins.Table { return nil }
