package wire

import (
	"encoding/json"
	"strings"
)

// Invoke, Result and Deployed bodies carry the Lambda event and answer: up to 6 MB of base64 (8 MB of JSON). encoding/json
// would scan such a body twice (validation, then decoding) and copy the string before decoding it; these paths
// decode the one big field straight from the message and leave the small rest to encoding/json, which stays the
// definition of what a body means. Anything unusual takes the plain encoding/json path.

// bigField names the field of a body type that holds the large byte payload.
func bigField(v any) (key string, set func([]byte), ok bool) {
	switch b := v.(type) {
	case *Invoke:
		return "event", func(p []byte) { b.Event = p }, true
	case *Result:
		return "payload", func(p []byte) { b.Payload = p }, true
	case *Deployed:
		return "payload", func(p []byte) { b.Payload = p }, true
	}
	return "", nil, false
}

// decodeFast decodes body into v when v has a big field that appears in body once, as plain base64. It
// reports false, having changed nothing it could not undo, when the body needs the general path.
func decodeFast(body []byte, v any) (bool, error) {
	key, set, ok := bigField(v)
	if !ok || len(body) < 4096 {
		return false, nil
	}
	members, err := scanObject(body, false)
	if err != nil {
		return false, nil
	}
	var big *member
	for i := range members {
		// encoding/json matches keys case-insensitively; any other spelling of the key means the general path.
		if strings.EqualFold(members[i].key, key) {
			if big != nil || members[i].key != key {
				return false, nil
			}
			big = &members[i]
		}
	}
	if big == nil {
		return false, nil
	}
	payload, ok := plainBase64(body[big.valStart:big.end])
	if !ok {
		return false, nil
	}
	small := make([]byte, 0, len(body)-(big.end-big.valStart)+2)
	small = append(small, body[:big.valStart]...)
	small = append(small, `""`...)
	small = append(small, body[big.end:]...)
	if err := json.Unmarshal(small, v); err != nil {
		return true, err
	}
	set(payload)
	return true, nil
}
