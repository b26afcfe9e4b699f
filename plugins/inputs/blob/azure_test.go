//go:build !nocloud

package blob

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/carpipe/carpipe/plugins/plugintest"
)

// Azurite, Microsoft's Azure Storage emulator, runs on Node.js; the test
// installs it once per machine with npm into the user's cache folder (about
// 30 s and 190 MB), or uses $CARPIPE_AZURITE (the path of azurite-blob) or
// an azurite-blob on the PATH.
const azuriteVersion = "3.37.0"

// Azurite's well-known development account, published in its docs.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

func azuriteBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CARPIPE_AZURITE"); p != "" {
		return p
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache folder to install Azurite in: %v", err)
	}
	dir := filepath.Join(cache, "carpipe-test", "azurite-"+azuriteVersion)
	bin := filepath.Join(dir, "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("the Azure test needs Azurite: install Node.js and npm, or set CARPIPE_AZURITE to an azurite-blob")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	// Installed aside and renamed, so that a half-done install is never used.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--prefix", tmp, "azurite@"+azuriteVersion).CombinedOutput()
	if err != nil {
		t.Fatalf("npm install azurite@%s: %v\n%s", azuriteVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(bin); serr != nil { // not installed by another test run meanwhile
			t.Fatal(err)
		}
	}
	t.Logf("installed Azurite %s in %s in %s", azuriteVersion, dir, time.Since(start).Round(time.Second))
	return bin
}

var azuriteListening = regexp.MustCompile(`listens on http://(127\.0\.0\.1:\d+)`)

// startAzurite starts Azurite's blob service on a free port of 127.0.0.1,
// in memory, and returns its address.
func startAzurite(t *testing.T) string {
	t.Helper()
	bin := azuriteBin(t)
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence",
		"--disableTelemetry", "--skipApiVersionCheck", "--silent")
	cmd.Dir = t.TempDir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := azuriteListening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("Azurite did not start listening within 30s")
		return ""
	}
}

func TestConformanceAzure(t *testing.T) {
	addr := startAzurite(t)
	t.Setenv("AZURE_STORAGE_ACCOUNT", azuriteAccount)
	t.Setenv("AZURE_STORAGE_KEY", azuriteKey)
	for _, k := range []string{"AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGEBLOB_CONNECTIONSTRING",
		"AZURE_STORAGE_DOMAIN", "AZURE_STORAGE_PROTOCOL", "AZURE_STORAGE_IS_LOCAL_EMULATOR", "AZURE_STORAGE_IS_CDN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	cred, err := azblob.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	client, err := azblob.NewClientWithSharedKeyCredential("http://"+addr+"/"+azuriteAccount, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	newContainer := func(t *testing.T) string {
		name := fmt.Sprintf("container%d", bucketCount.Add(1))
		if _, err := client.CreateContainer(t.Context(), name, nil); err != nil {
			t.Fatal(err)
		}
		return name
	}
	url := func(name string) string { return fmt.Sprintf("azblob://%s?protocol=http&domain=%s", name, addr) }
	conformance(t, func(t *testing.T) (*Blob, store) {
		name := newContainer(t)
		return initBlob(t, url(name)), azureStore(client, name)
	}, func(h *plugintest.InputHarness) { h.NoBackslash = true })
	t.Run("EscapeSequences", func(t *testing.T) {
		name := newContainer(t)
		checkEscapeSequences(t, azureStore(client, name), func() *Blob { return initBlob(t, url(name)) })
	})
}

// azureStore reaches a container through the Azure SDK, with raw names. It
// does not use t.Context(), which ends before the cleanup checks run.
func azureStore(client *azblob.Client, container string) store {
	return store{
		put: func(t *testing.T, key string, data []byte, _ time.Time) {
			if _, err := client.UploadBuffer(context.Background(), container, key, data, nil); err != nil {
				t.Fatal(err)
			}
		},
		get: func(t *testing.T, key string) ([]byte, bool) {
			resp, err := client.DownloadStream(context.Background(), container, key, nil)
			if bloberror.HasCode(err, bloberror.BlobNotFound) {
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return data, true
		},
		remove: func(t *testing.T, key string) {
			if _, err := client.DeleteBlob(context.Background(), container, key, nil); err != nil {
				t.Fatal(err)
			}
		},
		keys: func(t *testing.T) []string {
			var out []string
			pager := client.NewListBlobsFlatPager(container, nil)
			for pager.More() {
				page, err := pager.NextPage(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range page.Segment.BlobItems {
					out = append(out, *b.Name)
				}
			}
			return out
		},
	}
}
