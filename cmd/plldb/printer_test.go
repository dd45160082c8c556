package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/plldb/plldb/adapter/executor"
)

// An error report arrives as awslambdaric writes it, one record with its lines joined by \r; the terminal shows
// each line instead of writing them over one another.
func TestPrinterShowsTheLinesOfAnErrorReport(t *testing.T) {
	var out strings.Builder
	p := &invocationPrinter{w: &out}
	p.logLine(executor.LogLine{RequestID: "r1", Stream: "stdout",
		Text: "[ERROR] ValueError: boom\rTraceback (most recent call last):\r\u00a0\u00a0File \"app.py\", line 2, in handler\n"})
	assert.Equal(t, "      r1 [ERROR] ValueError: boom\nTraceback (most recent call last):\n\u00a0\u00a0File \"app.py\", line 2, in handler\n", out.String())
	assert.NotContains(t, out.String(), "\r")
}
