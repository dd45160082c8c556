package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"mime"
	"reflect"
	"testing"
	"unicode/utf8"
)

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"t":"ping"}`,
		`{"v":1,"t":"invoke","id":"r","to":"fn","from":"dev","body":{"event":"e30="}}`,
		`{"V":1,"T":"ack","\u0074o":"x","to":null,"body":null}`,
		`{"v":1,"t":"log","body":[]}`,
		`[]`,
		`{"v":1,"t":"x","from":"a","FROM":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := Unmarshal(msg)
		h, perr := PeekHeader(msg)

		// encoding/json is the reference for what an envelope means.
		var ref Envelope
		refErr := json.Unmarshal(msg, &ref)
		refOK := refErr == nil && validateHeader(headerOf(&ref)) == nil && bytes.HasPrefix(msg[skipWS(msg, 0):], []byte("{")) &&
			(len(ref.Body) == 0 || isObjectOrNull(ref.Body))
		if refOK != (err == nil) {
			t.Fatalf("Unmarshal error %v, but encoding/json error %v, header %+v, for %q", err, refErr, headerOf(&ref), msg)
		}
		if err != nil {
			return
		}
		if headerOf(&ref) != headerOf(e) {
			t.Fatalf("header %+v, encoding/json decodes %+v from %q", headerOf(e), headerOf(&ref), msg)
		}
		if bytes.Equal(ref.Body, jsonNull) {
			ref.Body = nil
		}
		if !bytes.Equal(ref.Body, e.Body) {
			t.Fatalf("body %q, encoding/json decodes %q", e.Body, ref.Body)
		}
		// Whatever a peer accepts, the relay must read the same way.
		if perr != nil {
			t.Fatalf("Unmarshal accepted %q but PeekHeader refused it: %v", msg, perr)
		}
		if h != headerOf(e) {
			t.Fatalf("PeekHeader %+v != Unmarshal header %+v for %q", h, headerOf(e), msg)
		}
		again, err := Marshal(e)
		if err != nil {
			t.Fatalf("Marshal of an accepted envelope failed: %v", err)
		}
		e2, err := Unmarshal(again)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(e)) failed: %v", err)
		}
		if headerOf(e2) != headerOf(e) {
			t.Fatalf("header changed in a round trip: %+v != %+v", headerOf(e2), headerOf(e))
		}
		third, err := Marshal(e2)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("Marshal is not stable: %q vs %q (%v)", again, third, err)
		}
	})
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[1,-0.5e+3,"\u00e9\n",true,false,null,{"a":[]}]`, `01`, `1.`, `"\x"`, `{"a" 1}`,
		` "s" `, `[1,]`, "\"\x01\"", `-`, `1e`, `{"a":1}}`, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := validJSON(b)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, err, json.Valid(b))
		}
	})
}

// FuzzChunkBody checks the direct chunk decoder against encoding/json.
func FuzzChunkBody(f *testing.F) {
	f.Add([]byte(`{"msg":"m","seq":1,"count":2,"size":3,"sum":"s","enc":"zstd","data":"AAEC"}`))
	f.Add([]byte(`{"msg":"m","seq":-0,"data":"AA=="}`))
	f.Add([]byte(`{"Msg":"m","seq":1,"seq":2}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeChunkBody(&Envelope{V: Version, T: TypeChunk, Body: body})
		var want Chunk
		wantErr := json.Unmarshal(body, &want)
		if len(body) == 0 {
			want, wantErr = Chunk{}, nil // an absent body decodes like {}
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeChunkBody error %v, encoding/json error %v, for %q", err, wantErr, body)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeChunkBody %+v, encoding/json %+v, for %q", got, want, body)
		}
	})
}

func FuzzPeekHeaderRestamp(f *testing.F) {
	f.Add([]byte(`{"v":1,"t":"ping"}`), "fn-1")
	f.Add([]byte(`{"v":1,"t":"chunk","to":"fn","from":"spoof","body":{"data":"AAAA"}}`), "dev")
	f.Add([]byte(`{"from":"a","v":1,"From":"b","t":"log","body":{"x":"}"},"\u0066rom":"c"}`), "p\"q")
	f.Add([]byte(` { "v" : 1 , "t" : "x" } `), "")
	f.Fuzz(func(t *testing.T, msg []byte, peer string) {
		h, perr := PeekHeader(msg)
		out, rerr := Restamp(msg, peer)
		peerOK := peer != "" && len(peer) <= MaxPeerLen && utf8.ValidString(peer)
		if perr == nil && peerOK && rerr != nil {
			t.Fatalf("PeekHeader accepted %q but Restamp(%q) failed: %v", msg, peer, rerr)
		}
		if rerr != nil {
			return
		}
		if !peerOK {
			t.Fatalf("Restamp accepted peer %q", peer)
		}
		h2, err := PeekHeader(out)
		if err != nil {
			t.Fatalf("restamped message %q does not peek: %v", out, err)
		}
		if h2.From != peer {
			t.Fatalf("from is %q, want %q", h2.From, peer)
		}
		if perr == nil {
			h.From = peer
			if h != h2 {
				t.Fatalf("header changed by Restamp: %+v != %+v", h2, h)
			}
		}
		e, err := Unmarshal(msg)
		if err != nil {
			return
		}
		e2, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("Unmarshal accepted the message but not its restamped form %q: %v", out, err)
		}
		if e2.From != peer || e2.T != e.T || e2.ID != e.ID || e2.To != e.To || !bytes.Equal(e2.Body, e.Body) {
			t.Fatalf("restamp changed more than from: %+v -> %+v", e, e2)
		}
	})
}

// FuzzReassemble derives an envelope and a sequence of chunk operations from the input. Whatever the
// operations do, Add must not panic, and an envelope it returns from chunks must be the original.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00hello"))
	f.Add([]byte("\x10\x01\x02\x03\x04\x05\x06\x07some event text that is long enough to matter"))
	f.Add([]byte("\xff\x02\x05\x09\x01\x00\x00\x40" + string(bytes.Repeat([]byte("ab"), 300))))
	f.Fuzz(func(t *testing.T, in []byte) {
		var hdr [8]byte
		copy(hdr[:], in)
		payload := in[min(len(in), 8):]
		seed := binary.LittleEndian.Uint64(hdr[:])
		rng := rand.New(rand.NewPCG(seed, uint64(len(payload))))

		// Incompressible filler makes several chunks even from a short input.
		event := append(append([]byte(nil), payload...), randomEvent(int(hdr[7])*16, seed)...)
		orig, err := NewEnvelope(TypeInvoke, "req", Invoke{RequestID: "req", Event: event})
		if err != nil {
			t.Fatal(err)
		}
		orig.To = "fn"
		limit := 400 + int(hdr[0])*8
		msgs, err := SplitWith(orig, SplitOptions{MaxMessage: limit})
		if err != nil {
			t.Fatalf("split: %v", err)
		}
		for _, m := range msgs {
			if len(m) > limit {
				t.Fatalf("message of %d bytes over the %d limit", len(m), limit)
			}
		}

		// Mutate: each of hdr[1..6] picks an operation.
		for _, op := range hdr[1:7] {
			if len(msgs) == 0 {
				break
			}
			i := rng.IntN(len(msgs))
			switch op % 8 {
			case 1: // drop a message
				msgs = append(msgs[:i], msgs[i+1:]...)
			case 2: // duplicate a message
				msgs = append(msgs, msgs[i])
			case 3: // flip a byte of a message
				if len(msgs[i]) > 0 {
					m := append([]byte(nil), msgs[i]...)
					m[rng.IntN(len(m))] ^= byte(1 + rng.IntN(255))
					msgs[i] = m
				}
			case 4: // truncate a message
				if len(msgs[i]) > 0 {
					msgs[i] = msgs[i][:rng.IntN(len(msgs[i]))]
				}
			case 5: // corrupt a chunk field
				msgs[i] = mutateChunk(msgs[i], rng)
			case 6: // shuffle
				rng.Shuffle(len(msgs), func(a, b int) { msgs[a], msgs[b] = msgs[b], msgs[a] })
			case 7: // swap two neighbours
				if i+1 < len(msgs) {
					msgs[i], msgs[i+1] = msgs[i+1], msgs[i]
				}
			}
		}

		r := NewReassembler(ReassemblerOptions{MaxPartial: 4, MaxPending: 1 << 20})
		for _, m := range msgs {
			stamped, err := Restamp(m, "peer")
			if err != nil {
				continue
			}
			e, err := Unmarshal(stamped)
			if err != nil {
				continue
			}
			out, err := r.Add(e)
			if err != nil || out == nil || e.T != TypeChunk {
				continue
			}
			if out.V != orig.V || out.T != orig.T || out.ID != orig.ID || out.To != orig.To || out.From != "peer" ||
				!bytes.Equal(out.Body, orig.Body) {
				t.Fatalf("reassembled %+v, want %+v", out, orig)
			}
		}
		m, b := r.Pending()
		if m < 0 || b < 0 || b > 1<<20 {
			t.Fatalf("pending out of bounds: %d messages, %d bytes", m, b)
		}
	})
}

// mutateChunk rewrites one field of a chunk message; messages that are not chunks are returned as they are.
func mutateChunk(msg []byte, rng *rand.Rand) []byte {
	e, err := Unmarshal(msg)
	if err != nil || e.T != TypeChunk {
		return msg
	}
	var c Chunk
	if e.DecodeBody(&c) != nil {
		return msg
	}
	deltas := []int{-1, 1, 1 << 20, -(1 << 20)}
	d := deltas[rng.IntN(len(deltas))]
	switch rng.IntN(7) {
	case 0:
		c.Seq += d
	case 1:
		c.Count += d
	case 2:
		c.Size += d
	case 3:
		c.Sum = "0" + c.Sum
	case 4:
		c.Enc = "gzip"
	case 5:
		if len(c.Data) > 0 {
			c.Data[rng.IntN(len(c.Data))] ^= 0x55
		}
	case 6:
		c.Msg += "x"
	}
	ne, err := NewEnvelope(TypeChunk, e.ID, c)
	if err != nil {
		return msg
	}
	ne.To = e.To
	out, err := Marshal(ne)
	if err != nil {
		return msg
	}
	return out
}

// FuzzAnswerBody decodes a result or error body as the sandbox's proxy does, and a deployed body (mirror mode) as
// the developer side does, and checks the receivers' rules against encoding/json: an accepted error document is
// one JSON object, an accepted content type is a media type that can be an HTTP header value, an accepted error
// type has no control characters.
func FuzzAnswerBody(f *testing.F) {
	f.Add([]byte(`{"requestId":"r","errorMessage":"boom","errorType":"ValueError","document":"eyJlcnJvck1lc3NhZ2UiOiAiYm9vbSJ9"}`))
	f.Add([]byte(`{"requestId":"r","errorType":"E","document":"WzFd"}`)) // [1]
	f.Add([]byte(`{"requestId":"r","document":null}`))
	f.Add([]byte(`{"requestId":"r","document":"IHsgfSA="}`)) // " { } "
	f.Add([]byte(`{"requestId":"r","payload":"AP8=","contentType":"application/unknown"}`))
	f.Add([]byte(`{"requestId":"r","payload":"e30=","contentType":"text/plain; charset=\"utf-8\""}`))
	f.Add([]byte(`{"requestId":"r","payload":"e30=","contentType":"a/b\r\nX-Evil: 1"}`))
	f.Add([]byte(`{"requestId":"r","error":true,"errorType":"ValueError","payload":"eyJlcnJvclR5cGUiOiAiVmFsdWVFcnJvciJ9","durationMs":12}`))
	f.Add([]byte(`{"requestId":"r","error":true,"errorType":"E\u001b[2J","payload":"e30="}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env := &Envelope{V: Version, T: TypeError, ID: "r", Body: body}
		var e Error
		if env.DecodeBody(&e) == nil && e.CheckDocument() == nil && len(e.Document) > 0 {
			var obj map[string]any
			if err := json.Unmarshal(e.Document, &obj); err != nil {
				t.Fatalf("accepted document %q is not JSON: %v", e.Document, err)
			}
			if i := skipWS(e.Document, 0); e.Document[i] != '{' {
				t.Fatalf("accepted document %q is not an object", e.Document)
			}
		}
		var d Deployed
		if env.DecodeBody(&d) == nil && d.Check("r") == nil {
			if d.RequestID != "r" || ValidContentType(d.ContentType) != nil {
				t.Fatalf("accepted deployed answer %+v", d)
			}
			for _, c := range d.ErrorType {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("accepted error type %q has a control character", d.ErrorType)
				}
			}
			if d.Error && len(d.Payload) > 0 {
				var obj map[string]any
				if err := json.Unmarshal(d.Payload, &obj); err != nil {
					t.Fatalf("accepted deployed error document %q is not a JSON object: %v", d.Payload, err)
				}
			}
			var ref Deployed
			if err := json.Unmarshal(body, &ref); len(body) > 0 && (err != nil || !reflect.DeepEqual(ref, d)) {
				t.Fatalf("deployed body decodes to %+v, encoding/json to %+v (%v)", d, ref, err)
			}
		}
		var r Result
		if env.DecodeBody(&r) == nil && ValidContentType(r.ContentType) == nil && r.ContentType != "" {
			for _, c := range []byte(r.ContentType) {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("accepted content type %q has a control byte", r.ContentType)
				}
			}
			if _, _, err := mime.ParseMediaType(r.ContentType); err != nil {
				t.Fatalf("accepted content type %q: %v", r.ContentType, err)
			}
		}
	})
}
