package local

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// IsLoopbackHost reports whether host (an IP literal, possibly in brackets, or a name) can only be reached from
// this machine: "localhost" or an IP in 127.0.0.0/8 or ::1. "" and "0.0.0.0" / "::" mean every interface and
// are not loopback; any other name is not either, since what it resolves to may change.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// guard decides which requests reach the Invoke API. The API runs the developer's code, so it must answer only
// what the developer (or a program of theirs) sends:
//
//   - A browser request is refused whatever it asks: any Origin header, or Sec-Fetch-Site cross-site/same-site.
//     A web page in the developer's browser can otherwise POST to http://127.0.0.1:3001 (a "simple" cross-origin
//     request needs no preflight) and trigger their functions.
//   - On loopback (the default), Host must name the listener: localhost or a loopback IP, with its exact port.
//     After a DNS rebinding, a page's requests reach 127.0.0.1 with Host evil.example:3001 and may read the
//     answers; such a Host is refused.
//   - With AllowRemote every request must carry the token, either as "Authorization: Bearer <token>" or as the
//     access key id of an AWS SigV4 Authorization header (so the AWS CLI and SDKs work with
//     AWS_ACCESS_KEY_ID=<token>). Host is then whatever name the callers use, and the token is what keeps a
//     rebinding page out.
//
// The AWS CLI and SDKs send no Origin or Sec-Fetch-* headers and put the endpoint's host:port in Host, so they
// pass unchanged on loopback.
type guard struct {
	port  string // the listener's port, exactly as Host must carry it
	token string // "" on loopback; required on every request with AllowRemote
}

// check returns "" for a request that may proceed, or why it is refused.
func (g guard) check(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return fmt.Sprintf("refused a browser request (Origin: %s): the Invoke API runs your functions and answers only programs such as the AWS CLI and SDKs, never web pages", clipHeader(o))
	}
	switch site := strings.ToLower(r.Header.Get("Sec-Fetch-Site")); site {
	case "cross-site", "same-site":
		return fmt.Sprintf("refused a browser request (Sec-Fetch-Site: %s): the Invoke API answers only programs such as the AWS CLI and SDKs, never web pages", site)
	}
	if g.token != "" {
		if !g.tokenOK(r.Header.Get("Authorization")) {
			return "this Invoke API was started with --allow-remote and wants its token (printed on plldb's stderr at start): send Authorization: Bearer <token>, or use the token as the AWS access key id (AWS_ACCESS_KEY_ID=<token>) with the AWS CLI and SDKs"
		}
		return ""
	}
	if !g.hostOK(r.Host) {
		return fmt.Sprintf("refused Host %s: the Invoke API answers only requests addressed to it on loopback (127.0.0.1:%s, localhost:%s or [::1]:%s); another name in Host is what a DNS-rebinding web page sends", clipHeader(r.Host), g.port, g.port, g.port)
	}
	return ""
}

// hostOK accepts localhost or a loopback IP literal with the listener's exact port (a missing port only when
// the listener is on HTTP's default port 80, since clients then leave it out).
func (g guard) hostOK(host string) bool {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		if g.port != "80" {
			return false
		}
		h, port = host, "80"
	}
	if port != g.port || h == "" {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// tokenOK accepts "Bearer <token>" and an AWS SigV4 header whose access key id is the token
// ("AWS4-HMAC-SHA256 Credential=<token>/<date>/<region>/lambda/aws4_request, …"). The signature itself is not
// checked: over plain HTTP both forms carry the token as it is, and that is all they prove.
func (g guard) tokenOK(auth string) bool {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(auth), " ")
	var got string
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		got = strings.TrimSpace(rest)
	case scheme == "AWS4-HMAC-SHA256":
		for _, part := range strings.Split(rest, ",") {
			if cred, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
				got, _, _ = strings.Cut(cred, "/")
			}
		}
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) == 1
}

// clipHeader keeps a refused header value short and printable in an error message.
func clipHeader(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strconv.QuoteToASCII(s)
}
