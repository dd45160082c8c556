package store_test

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/plldb/plldb/cloud/store"
	"github.com/plldb/plldb/testfixtures/moto"
)

// TestMain fails the binary if a test leaves goroutines behind. Two kinds live as long as the binary by design:
// the SDK HTTP client's idle keep-alive connections to moto, and the copier of the shared moto server's output.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("os/exec.(*Cmd).writerDescriptor.func1"))
}

// clock is a settable clock: tests move it exactly to expiry boundaries.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 21, 18, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// calls counts the DynamoDB operations a client makes, by operation name.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[op]++
}

// take returns the counts so far and starts again from zero.
func (c *calls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = nil
	return n
}

func total(m map[string]int) int {
	sum := 0
	for _, v := range m {
		sum += v
	}
	return sum
}

// countingMiddleware is an SDK middleware that counts every operation the client sends, retries included.
func countingMiddleware(c *calls) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("plldbCountCalls",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				c.add(awsmiddleware.GetOperationName(ctx))
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
}

var (
	tableSeq      atomic.Int64
	badTableChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)
)

// dynamo is one test's view of moto: a client that counts its calls and tables named for the test alone, so
// tests never need to reset moto.
type dynamo struct {
	client *dynamodb.Client
	tables store.Tables
	calls  *calls
}

func newDynamo(t testing.TB) *dynamo {
	t.Helper()
	s := moto.Start(t)
	c := &calls{}
	client := dynamodb.NewFromConfig(s.Config(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, countingMiddleware(c))
	})
	name := badTableChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 150 {
		name = name[:150]
	}
	tables := store.DefaultTables(fmt.Sprintf("t%d-%s", tableSeq.Add(1), name))
	require.NoError(t, store.CreateTables(context.Background(), client, tables))
	c.take()
	return &dynamo{client: client, tables: tables, calls: c}
}

func (d *dynamo) store(now func() time.Time) *store.Store {
	s := store.New(d.client, d.tables)
	s.Now = now
	return s
}
