package schemas

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A schema that is not JSON is placed at its line and column, as editors
// and compilers write them: FILE:LINE:COL.
func TestSchemaSyntaxPosition(t *testing.T) {
	for body, want := range map[string]string{
		"{\"type\":\"object\",\n  \"properties\": {\n    \"é\": {\"type\": \"string\",}\n  }\n}\n": "bad.schema.json:3:29: invalid JSON",
		"{\"type\":\"object\"}\n\n x": "bad.schema.json:3:2: invalid JSON: data after the JSON document",
		"{\"type\":":                  "bad.schema.json:1:9: invalid JSON",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "bad.schema.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", body, err, want)
		}
	}
}
