package template

import (
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Error is a problem with a template, located in its file. Line and Column are 1-based; 0 means unknown (a
// file that cannot be read has neither, a YAML syntax error has no column).
type Error struct {
	File         string
	Line, Column int
	Msg          string

	err error // the underlying cause, for errors.Is (e.g. fs.ErrNotExist)
}

// Error formats as "file:line:col: msg", the form editors and terminals turn into links. Unknown parts are left
// out rather than printed as 0.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap gives the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

// errAt builds an Error located at a node.
func errAt(file string, n *yaml.Node, format string, args ...any) *Error {
	e := &Error{File: file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// FunctionsError refuses a function the caller asked for by name (`--functions`, a launch's "functions"):
// one that the template or stack does not have, or that plldb cannot serve. It is its own type so that each
// front end can name the setting the name came from, which only the front end knows.
type FunctionsError struct{ Err error }

func (e *FunctionsError) Error() string { return e.Err.Error() }

// Unwrap gives the refusal itself.
func (e *FunctionsError) Unwrap() error { return e.Err }
