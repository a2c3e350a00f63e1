package repository_test

import (
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/countcachetest"
)

func TestMemoryCountCacheConformance(t *testing.T) {
	countcachetest.Run(t, func(t *testing.T, ttl time.Duration, now func() time.Time) repository.CountCache {
		return repository.NewMemoryCountCache(repository.MemoryCountCacheConfig{TTL: ttl, Now: now})
	}, false)
}
