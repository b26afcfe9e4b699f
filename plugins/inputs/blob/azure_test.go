//go:build !nocloud

package blob

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/carpipe/carpipe/plugins/plugintest"
)

// Azurite, Microsoft's Azure Storage emulator, runs on Node.js, which a Go
// test cannot start on its own: .ci/run installs and starts it and sets
// CARPIPE_AZURITE to its blob service's address. Elsewhere the test skips,
// saying how to run it.
const azuriteHow = "start one (npx -p azurite@3.37.0 azurite-blob --inMemoryPersistence) and set CARPIPE_AZURITE=127.0.0.1:10000; .ci/run does both"

// Azurite's well-known development account, published in its docs.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azurite returns the address of the Azurite blob service to test against.
func azurite(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("CARPIPE_AZURITE")
	if addr == "" {
		plugintest.Missing(t, "Azurite (CARPIPE_AZURITE is not set)", azuriteHow)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("CARPIPE_AZURITE=%q: want the blob service's host:port: %v", addr, err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("CARPIPE_AZURITE=%s: no Azurite answers: %v", addr, err)
	}
	c.Close()
	return addr
}

// runID keeps container names apart across runs against one Azurite.
var runID = strconv.FormatInt(time.Now().UnixNano(), 36)

func TestConformanceAzure(t *testing.T) {
	addr := azurite(t)
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
		name := fmt.Sprintf("carpipe-%s-%d", runID, bucketCount.Add(1))
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
