package wire

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxErrorTypeLen bounds Deployed.ErrorType, which comes from the deployed runtime's
// Lambda-Runtime-Function-Error-Type header and ends up in the developer's debug console.
const MaxErrorTypeLen = 256

// Check tells whether a deployed body received in an envelope with id envID may be shown as it is: it names the
// envelope's request, its content type is a media type (ValidContentType), its error type is a short printable
// string, and an error's payload is absent or one JSON object (the error document, as Error.CheckDocument requires).
func (d *Deployed) Check(envID string) error {
	if d.RequestID == "" {
		return errors.New("deployed answer without a request id")
	}
	if d.RequestID != envID {
		return fmt.Errorf("deployed answer for %q arrived in envelope %q", d.RequestID, envID)
	}
	if err := ValidContentType(d.ContentType); err != nil {
		return fmt.Errorf("deployed answer of %q: %w", d.RequestID, err)
	}
	if len(d.ErrorType) > MaxErrorTypeLen {
		return fmt.Errorf("deployed answer of %q: error type is %d bytes, longer than %d", d.RequestID, len(d.ErrorType), MaxErrorTypeLen)
	}
	if !utf8.ValidString(d.ErrorType) {
		return fmt.Errorf("deployed answer of %q: error type is not valid UTF-8", d.RequestID)
	}
	for _, r := range d.ErrorType {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("deployed answer of %q: error type has a control character %U", d.RequestID, r)
		}
	}
	if d.DurationMs < 0 {
		return fmt.Errorf("deployed answer of %q: negative duration %d ms", d.RequestID, d.DurationMs)
	}
	if d.Error {
		doc := Error{RequestID: d.RequestID, Document: d.Payload}
		if err := doc.CheckDocument(); err != nil {
			return fmt.Errorf("deployed answer: %w", err)
		}
	} else if d.ErrorType != "" {
		return fmt.Errorf("deployed answer of %q has an error type but is not an error", d.RequestID)
	}
	return nil
}
