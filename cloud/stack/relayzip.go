package stack

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// RelayPackage is the import path of the relay Lambda's main package.
const RelayPackage = "github.com/plldb/plldb/cloud/relaylambda"

// zipTime is fixed so that the same sources give the same zip, and so the same content-addressed S3 key: a
// re-install without code changes uploads nothing and updates nothing.
var zipTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildRelayZip cross-compiles the relay Lambda for linux/arm64 as "bootstrap" (what provided.al2023 runs) and
// writes it zipped to out. It needs the Go toolchain and plldb's source tree: it builds in the module that
// contains this file when that is present (a development build), else in the current directory.
func BuildRelayZip(ctx context.Context, out string) error {
	if out == "" {
		return fmt.Errorf("build relay zip: no output file given")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build relay zip: the Go toolchain is needed on PATH: %w", err)
	}
	tmp, err := os.MkdirTemp("", "plldb-relay-")
	if err != nil {
		return fmt.Errorf("build relay zip: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bootstrap")
	// lambda.norpc drops aws-lambda-go's net/rpc mode, which only the retired go1.x runtime used.
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false", "-tags", "lambda.norpc",
		"-ldflags", "-s -w", "-o", bin, RelayPackage)
	cmd.Dir = SourceDir()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build relay Lambda for linux/arm64: %w\n%s", err, b)
	}
	code, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("read built relay: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: zipTime}
	h.SetMode(0o755)
	fw, err := zw.CreateHeader(h)
	if err == nil {
		_, err = fw.Write(code)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return fmt.Errorf("zip relay: %w", err)
	}
	if dir := filepath.Dir(out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	// Write then rename, so a failed build never leaves a truncated zip behind.
	part := out + ".part"
	if err := os.WriteFile(part, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", part, err)
	}
	if err := os.Rename(part, out); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// SourceDir is the directory of this package's source when it exists (the binary was built from a checkout), else
// "" (the current directory).
func SourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, "template.yaml")); err != nil {
		return ""
	}
	return dir
}
