package journal

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/audit"
)

func codecEntry() audit.Entry {
	return audit.Entry{
		ID: uuid.Must(uuid.NewV7()), Timestamp: time.Now().UTC().Truncate(time.Microsecond),
		UserID: "0b4f6a9e-2f6b-4b8e-9d53-3e1c7f2f0a11", Username: "ada", UserRoles: []string{"get-authors"},
		ActionType: "WS:GET_AUTHORS", Resource: "1", Outcome: audit.Success, IPAddress: "10.0.0.1", UserAgent: "bench/1.0",
		RequestID: "5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a", RequestData: json.RawMessage(`{"page":1,"per_page":20}`),
		ResponseStatus: audit.Status(0), DurationMS: 1.5,
		Seq: 123456, PrevHash: fmt.Sprintf("%064x", 1), Hash: fmt.Sprintf("%064x", 2),
	}
}

func TestFrameRoundTrip(t *testing.T) {
	e := codecEntry()
	frame := appendFrame(nil, 42, encodeEntry(nil, &e))
	payload, pos, size, ok := parseFrame(frame)
	require.True(t, ok)
	require.EqualValues(t, 42, pos)
	require.Equal(t, len(frame), size)
	got, err := decodeEntry(payload)
	require.NoError(t, err)
	require.Equal(t, e, got)
	for i := range frame {
		bad := append([]byte(nil), frame...)
		bad[i] ^= 1
		_, _, _, ok := parseFrame(bad)
		require.False(t, ok, "bit flipped at %d", i)
	}
	_, _, _, ok = parseFrame(frame[:len(frame)-1])
	require.False(t, ok)
}

func TestDecodeRefusesTrailingBytes(t *testing.T) {
	e := codecEntry()
	p := encodeEntry(nil, &e)
	_, err := decodeEntry(append(p, 'x'))
	require.Error(t, err)
	_, err = decodeEntry(p[:len(p)-1])
	require.Error(t, err)
}

func BenchmarkEncode(b *testing.B) {
	e := codecEntry()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendFrame(buf[:0], 1, encodeEntry(nil, &e))
	}
	b.ReportMetric(float64(len(buf)), "bytes/record")
}

func BenchmarkDecode(b *testing.B) {
	e := codecEntry()
	p := encodeEntry(nil, &e)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEntry(p); err != nil {
			b.Fatal(err)
		}
	}
}
