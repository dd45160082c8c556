package knockkey

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header is the HTTP header that carries a knock (layer/carrier reads it in any case).
const Header = "X-Plldb-Knock"

// Format is a way of printing a knock: the header line, or a ready-to-run command carrying it. `plldb knock`
// and the DAP request plldbKnock print the same lines, so both use FormatLine.
type Format string

const (
	FormatHeader Format = "header" // X-Plldb-Knock: <token>
	FormatCurl   Format = "curl"   // curl -H 'X-Plldb-Knock: <token>' '<URL>'
	FormatAWSCLI Format = "awsCli" // aws lambda invoke … --client-context <base64> out.json (AWS CLI v1 or v2)
	FormatBoto3  Format = "boto3"  // three lines of Python invoking the function with the knock in its client context
)

// LineOptions say what a ready-to-run line calls.
type LineOptions struct {
	URL      string // FormatCurl: the URL to call (required)
	Function string // FormatAWSCLI, FormatBoto3: the function to invoke; "" prints FUNCTION for the user to fill in
	Endpoint string // FormatAWSCLI, FormatBoto3: an Invoke API endpoint (plldb local's); "" is AWS's own
}

// FormatLine prints tok as f asks. The result holds the token: it goes to the developer, never to a log.
func FormatLine(f Format, tok string, o LineOptions) (string, error) {
	fn := o.Function
	if fn == "" {
		fn = "FUNCTION"
	}
	switch f {
	case FormatHeader, "":
		return Header + ": " + tok + "\n", nil
	case FormatCurl:
		if o.URL == "" {
			return "", errors.New("a curl line needs the URL to call")
		}
		return fmt.Sprintf("curl -H %s %s\n", ShellQuote(Header+": "+tok), ShellQuote(o.URL)), nil
	case FormatAWSCLI:
		endpoint := ""
		if o.Endpoint != "" {
			endpoint = " --endpoint-url " + ShellQuote(o.Endpoint)
		}
		// No --payload: the event is then {}, and the line runs with the AWS CLI v1 and v2 alike (v2 would need
		// --cli-binary-format raw-in-base64-out to read a JSON --payload, an option v1 does not have).
		return fmt.Sprintf("aws lambda invoke%s --function-name %s --client-context %s out.json\n",
			endpoint, ShellQuote(fn), ClientContext(tok)), nil
	case FormatBoto3:
		endpoint := ""
		if o.Endpoint != "" {
			endpoint = ", endpoint_url=" + strconv.Quote(o.Endpoint)
		}
		return fmt.Sprintf("import boto3\nresp = boto3.client(\"lambda\"%s).invoke(FunctionName=%s, Payload=b\"{}\", ClientContext=%s)\nprint(resp[\"Payload\"].read().decode())\n",
			endpoint, strconv.Quote(fn), strconv.Quote(ClientContext(tok))), nil
	}
	return "", fmt.Errorf("unknown knock format %q: header, curl, awsCli or boto3", string(f))
}

// RouteApplies reports whether a knock bound to a route can work in f's line. The awsCli and boto3 lines invoke
// the function with the event {}, which is no HTTP request, so a route-bound knock would be refused there and
// the invocation would run without the debugger (VS Code's Copy Knock… asks no route for them, for that reason).
func RouteApplies(f Format) bool {
	return f != FormatAWSCLI && f != FormatBoto3
}

// ClientContext is the X-Amz-Client-Context value carrying tok: base64 of {"custom":{"plldbKnock":tok}}, the
// field layer/carrier looks for.
func ClientContext(tok string) string {
	js, _ := json.Marshal(map[string]any{"custom": map[string]string{"plldbKnock": tok}})
	return base64.StdEncoding.EncodeToString(js)
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
