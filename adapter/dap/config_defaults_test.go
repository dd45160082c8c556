package dap

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/plldb/plldb/adapter/local"
)

// TestConcurrencyDefaultsAreLocals: the launch attributes' defaults are plldb local's own.
func TestConcurrencyDefaultsAreLocals(t *testing.T) {
	assert.Equal(t, local.DefaultMaxConcurrency, DefaultMaxConcurrency)
	assert.Equal(t, local.DefaultAccountConcurrency, DefaultAccountConcurrency)
}
