package stack

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"
)

// FuzzParseAsset feeds arbitrary files where install expects a zip: a clear error or an asset, never a panic.
func FuzzParseAsset(f *testing.F) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("bootstrap")
	_, _ = w.Write([]byte("binary"))
	_ = zw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Add([]byte("not a zip"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parseAsset("relay code", "relay.zip", "bootstrap", data)
		if err != nil {
			if !strings.Contains(err.Error(), "relay.zip") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if !strings.HasPrefix(a.key, "assets/") || len(a.key) != len("assets/")+64+len(".zip") {
			t.Fatalf("bad key %q", a.key)
		}
	})
}
