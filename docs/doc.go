// Package docs holds carpipe's documentation, and the tests that keep it
// true: every shell example runs (or says why it cannot), plugins.md is
// generated from the plugins' specs, every flag and input key is
// documented, and every link resolves.
package docs
