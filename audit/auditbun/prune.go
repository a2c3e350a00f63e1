package auditbun

import (
	"context"
	"fmt"
	"time"
)

// Prune deletes the entries older than olderThan and returns how many.
// Verify a pruned chain from the oldest remaining link (ChainVerifier's
// AfterSeq and AfterHash).
func (s *Sink) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan).UTC()
	res, err := s.db.NewDelete().ModelTableExpr("?", s.tableExpr()).Where(`"timestamp" < ?`, cutoff).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("auditbun: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
