package cursor

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCursorRoundTrip(t *testing.T) {
	c := Codec{Key: []byte(DefaultKey), Table: "authors"}
	for _, v := range []any{int64(0), int64(1), int64(-5), int64(1 << 62), "abc", "", "ü/+=", uint32(7)} {
		s, err := c.Encode(reflect.ValueOf(v))
		require.NoError(t, err)
		dst := reflect.New(reflect.TypeOf(v)).Elem()
		require.NoError(t, c.Decode(s, dst))
		assert.Equal(t, v, dst.Interface())
	}
	type key struct{ A, B int }
	s, err := c.Encode(reflect.ValueOf(key{1, 2}))
	require.NoError(t, err)
	var k key
	require.NoError(t, c.Decode(s, reflect.ValueOf(&k).Elem()))
	assert.Equal(t, key{1, 2}, k)

	// Another table or key refuses it.
	s, err = c.Encode(reflect.ValueOf(int64(9)))
	require.NoError(t, err)
	var n int64
	require.EqualError(t, Codec{Key: c.Key, Table: "books"}.Decode(s, reflect.ValueOf(&n).Elem()), "not issued for books")
	require.EqualError(t, Codec{Key: []byte("x"), Table: "authors"}.Decode(s, reflect.ValueOf(&n).Elem()), "not issued for authors")
	// An int8 key out of range.
	big, err := c.Encode(reflect.ValueOf(int64(1000)))
	require.NoError(t, err)
	var small int8
	require.EqualError(t, c.Decode(big, reflect.ValueOf(&small).Elem()), "malformed key")
}

func FuzzCursorDecode(f *testing.F) {
	c := Codec{Key: []byte(DefaultKey), Table: "authors"}
	good, _ := c.Encode(reflect.ValueOf(int64(42)))
	for _, s := range []string{good, "", "AA", "!!", good + "A", good[:len(good)-1]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var n int64
		if err := c.Decode(s, reflect.ValueOf(&n).Elem()); err != nil {
			require.Contains(t, []string{"too long", "malformed", "not issued for authors", "malformed key"}, err.Error())
			return
		}
		// Anything accepted re-encodes to the same cursor.
		again, err := c.Encode(reflect.ValueOf(n))
		require.NoError(t, err)
		assert.Equal(t, s, again)
	})
}
