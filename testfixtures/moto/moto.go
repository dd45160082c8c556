// Package moto runs moto in server mode for tests that exercise AWS APIs offline: one server per test binary,
// on a free loopback port, started on first use from the project's virtualenv and stopped when the binary
// exits. Each test gets a clean slate by calling Reset (or by using names unique to the test).
package moto

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/plldb/plldb/testfixtures/freeport"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

//go:embed serve.py
var serveScript string

// Region is the region tests use against moto.
const Region = "us-east-1"

// Server is a running moto server.
type Server struct {
	// Endpoint is the base URL every client points at (aws-sdk-go-v2's BaseEndpoint).
	Endpoint string
	cmd      *exec.Cmd
}

var (
	once    sync.Once
	shared  *Server
	sharedE error
)

// Start returns the test binary's moto server, starting it on first use. Tests that call it must not run in
// parallel with tests that Reset it.
func Start(t testing.TB) *Server {
	t.Helper()
	py := pyenv.Python(t)
	once.Do(func() { shared, sharedE = start(py) })
	if sharedE != nil {
		t.Fatalf("start moto: %v", sharedE)
	}
	return shared
}

func start(py string) (*Server, error) {
	port, err := freeport.Pick()
	if err != nil {
		return nil, err
	}
	// serve.py is moto_server with DynamoDB's per-request atomicity (see the file).
	cmd := exec.Command(py, "-c", serveScript, "127.0.0.1", fmt.Sprint(port))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// Its own process group, so that killing it takes its workers along; and it dies with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto with %s: %w", py, err)
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return nil, fmt.Errorf("moto did not answer on %s within 60s: %v\n%s", s.Endpoint, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Reset drops every resource moto holds.
func (s *Server) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.Endpoint+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
}

// Config is an aws.Config pointed at the server with dummy credentials.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", "testing"),
		BaseEndpoint: aws.String(s.Endpoint),
	}
}

// Env is the environment a plldb process needs to talk to this server through the SDK's default chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_SESSION_TOKEN=testing",
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
	}
}

// Stop ends the server; tests need not call it (it dies with the test binary).
func (s *Server) Stop(ctx context.Context) {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// IsolateAWSConfig points the SDK's default chain at an empty home for the test, so that the machine's own AWS
// setup (profile, region, credentials, endpoint) cannot leak into it. It returns the folder that holds the
// (empty) config and credentials files, for a test that writes a profile there.
func IsolateAWSConfig(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	return dir
}

// RawFunctionConfiguration is Lambda's GetFunctionConfiguration answer for the function, verbatim: restore tests
// compare it byte for byte, which the SDK's decoded output cannot show (absent vs empty environment, key order).
func RawFunctionConfiguration(t testing.TB, cfg aws.Config, name string) []byte {
	t.Helper()
	rec := &bodyRecorder{}
	cfg.HTTPClient = rec
	_, err := lambda.NewFromConfig(cfg).GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration %s: %v", name, err)
	}
	return rec.body
}

// bodyRecorder is an HTTP client that keeps the last response body.
type bodyRecorder struct{ body []byte }

func (c *bodyRecorder) Do(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.body = b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}
