package testenv

import (
	"context"
	"database/sql"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestPostgresURLGivesFreshDatabase(t *testing.T) {
	u := PostgresURL(t)
	db, err := sql.Open("pgx", u)
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRowContext(context.Background(),
		"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&n))
	require.Equal(t, 0, n)
}

func TestRedisPrefixIsUnique(t *testing.T) {
	a, b := RedisPrefix(t), RedisPrefix(t)
	require.NotEqual(t, a, b)
	opt, err := redis.ParseURL(RedisURL(t))
	require.NoError(t, err)
	c := redis.NewClient(opt)
	defer c.Close()
	require.NoError(t, c.Set(context.Background(), a+"k", "v", 0).Err())
}

func TestPrivateRedisStopStart(t *testing.T) {
	s := StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, c.Ping(ctx).Err())
	s.Stop()
	require.Error(t, c.Ping(ctx).Err())
	s.Start()
	require.NoError(t, c.Ping(ctx).Err())
}

func TestPrivatePostgres(t *testing.T) {
	s := StartPostgres(t)
	db, err := sql.Open("pgx", s.URL("postgres"))
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Ping())
	s.Restart("fast")
	require.Eventually(t, func() bool { return db.Ping() == nil }, 10e9, 50e6)
}
