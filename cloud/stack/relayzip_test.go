package stack_test

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/stack"
)

func TestBuildRelayZipCrossCompilesBootstrapForArm64(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the relay Lambda")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "sub", "relay.zip")
	require.NoError(t, stack.BuildRelayZip(context.Background(), out))

	zr, err := zip.OpenReader(out)
	require.NoError(t, err)
	defer zr.Close()
	require.Len(t, zr.File, 1)
	f := zr.File[0]
	assert.Equal(t, "bootstrap", f.Name)
	assert.Equal(t, os.FileMode(0o755), f.Mode().Perm(), "Lambda must be able to execute it")
	rc, err := f.Open()
	require.NoError(t, err)
	bin, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	ef, err := elf.NewFile(bytes.NewReader(bin))
	require.NoError(t, err)
	assert.Equal(t, elf.EM_AARCH64, ef.Machine)
	assert.Equal(t, elf.ELFOSABI_NONE, ef.OSABI)

	// The same sources give the same zip, so a re-install uploads nothing.
	again := filepath.Join(dir, "again.zip")
	require.NoError(t, stack.BuildRelayZip(context.Background(), again))
	a, err := os.ReadFile(out)
	require.NoError(t, err)
	b, err := os.ReadFile(again)
	require.NoError(t, err)
	assert.Equal(t, a, b)
	_, err = os.Stat(out + ".part")
	assert.True(t, os.IsNotExist(err), "no partial file left behind")
}

func TestBuildRelayZipNeedsAnOutput(t *testing.T) {
	require.ErrorContains(t, stack.BuildRelayZip(context.Background(), ""), "no output file")
}

func TestBuildRelayZipStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "relay.zip")
	require.Error(t, stack.BuildRelayZip(ctx, out))
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err))
}
