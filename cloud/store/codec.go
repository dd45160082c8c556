package store

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

type item = map[string]types.AttributeValue

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func nv(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// getS reads a string attribute; a missing one is "".
func getS(it item, name string) (string, error) {
	switch v := it[name].(type) {
	case nil:
		return "", nil
	case *types.AttributeValueMemberS:
		return v.Value, nil
	default:
		return "", fmt.Errorf("attribute %s is %T, not a string", name, v)
	}
}

// getN reads a number attribute; ok is false when it is missing.
func getN(it item, name string) (n int64, ok bool, err error) {
	switch v := it[name].(type) {
	case nil:
		return 0, false, nil
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("attribute %s: %w", name, err)
		}
		return n, true, nil
	default:
		return 0, false, fmt.Errorf("attribute %s is %T, not a number", name, v)
	}
}

// unixNano encodes t for storage, clamped to int64 nanoseconds; times are compared as numbers in conditions.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func fromUnixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// ttlSeconds is the DynamoDB TTL value for an item that may be deleted from t on: seconds, rounded up, so TTL
// never removes an item before the store's own expiry check would.
func ttlSeconds(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// timeS encodes a time exactly (zero included) as RFC 3339 with nanoseconds.
func timeS(t time.Time) types.AttributeValue {
	return sv(t.UTC().Format(time.RFC3339Nano))
}

func getTime(it item, name string) (time.Time, error) {
	s, err := getS(it, name)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("attribute %s: %w", name, err)
	}
	return t.UTC(), nil
}

// keyEscaper makes role and peer safe inside '#'-separated sort keys: escaped, neither contains '#', so the
// prefix "p#<peer>#" of one peer is never the prefix of another peer's keys.
var keyEscaper = strings.NewReplacer("%", "%25", "#", "%23")

func escapeKey(s string) string { return keyEscaper.Replace(s) }

// order is the part of an index sort key that sorts connections by age: connection time, then insertion time,
// both as fixed-width unsigned numbers so that byte order is numeric order.
func order(connectedAt time.Time, putAt int64) string {
	return fmt.Sprintf("%020d.%020d", uint64(unixNano(connectedAt))^(1<<63), uint64(putAt)^(1<<63))
}
