package plugintest

import (
	"os"
	"testing"
)

// CI reports whether the tests run in CI, which sets CI=true (GitHub
// Actions, GitLab CI and .ci/run all do).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing is for a test that needs something Go cannot start in the test
// (a Node.js server, a C tool): in CI, where .ci/run provides it, its
// absence fails the test; elsewhere the test skips with how to enable it.
func Missing(t testing.TB, what, enable string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is missing; .ci/run provides it in CI (%s)", what, enable)
	}
	t.Skipf("needs %s: %s", what, enable)
}
