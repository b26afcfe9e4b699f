//go:build nocloud

package blob

import (
	"strings"
	"testing"
)

// TestNoCloud: a build without the cloud drivers says so for their URLs.
func TestNoCloud(t *testing.T) {
	for _, url := range []string{"s3://bucket", "gs://bucket", "azblob://container"} {
		b := New()
		b.URL = url
		if err := b.Validate(); err == nil || !strings.Contains(err.Error(), "-tags nocloud") {
			t.Errorf("Validate of %s: %v; want an error naming -tags nocloud", url, err)
		}
	}
}
