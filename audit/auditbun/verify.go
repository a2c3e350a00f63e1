package auditbun

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/uptrace/bun"
)

// ChainHead returns the stored chain head: the sequence number and hash of
// the last chained entry written, read from the chain head table (0 and ""
// when no chained entry was ever written). Deleting entries does not change
// it.
func (s *Sink) ChainHead(ctx context.Context) (int64, string, error) {
	seq, hash, _, err := s.chainHead(ctx)
	return seq, hash, err
}

func (s *Sink) chainHead(ctx context.Context) (seq int64, hash string, found bool, err error) {
	err = s.db.NewSelect().ModelTableExpr("?", bun.Ident(s.head)).Column("chain_seq", "hash").
		Where("id = 1").Scan(ctx, &seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("auditbun: chain head: %w", err)
	}
	return seq, hash, true, nil
}

// verifyPage is how many chained rows Verify reads at a time.
const verifyPage = 1000

// Verify checks the chained rows in sequence order with v and then against
// the stored chain head, and returns the first break (an *audit.Break) or
// nil. Besides an edited, deleted, inserted or reordered row, it reports
// rows missing at the end (the last row is older than the head), a last
// row that is not the head, and chained rows without a head. Rows written
// while Verify runs are checked as they come. A table whose rows were all
// pruned verifies only with v.AfterSeq and v.AfterHash set to the head.
func (s *Sink) Verify(ctx context.Context, v *audit.ChainVerifier) error {
	// The head is read first: every row up to it is committed by then.
	headSeq, headHash, found, err := s.chainHead(ctx)
	if err != nil {
		return fmt.Errorf("auditbun: verify: %w", err)
	}
	var (
		lastSeq int64
		lastID  string
	)
	for {
		var rows []row
		q := s.db.NewSelect().Model(&rows).ModelTableExpr("? AS ?", s.tableExpr(), bun.Ident("row")).
			Where("chain_seq IS NOT NULL")
		if lastID != "" {
			q = q.Where("(chain_seq > ? OR (chain_seq = ? AND id > ?))", lastSeq, lastSeq, lastID)
		}
		err := q.OrderExpr("chain_seq ASC, id ASC").Limit(verifyPage).Scan(ctx)
		if err != nil {
			return fmt.Errorf("auditbun: verify: %w", err)
		}
		for i := range rows {
			e, err := rows[i].entry()
			if err != nil {
				return err
			}
			if b := v.Check(e); b != nil {
				return b
			}
			if found && e.Seq == headSeq && e.Hash != headHash {
				return &audit.Break{Seq: e.Seq, ID: e.ID.String(), Reason: "hash does not match the chain head"}
			}
		}
		if len(rows) < verifyPage {
			break
		}
		last := rows[len(rows)-1]
		lastSeq, lastID = *last.ChainSeq, last.ID
	}
	seq, _, checked := v.Head()
	switch {
	case found && seq < headSeq:
		return &audit.Break{Seq: seq + 1, Reason: fmt.Sprintf("missing: the chain head is at seq %d, the last entry at seq %d", headSeq, seq)}
	case !found && checked > 0:
		// The first chained batch may have been committed after the head
		// was read.
		if _, _, found, err = s.chainHead(ctx); err != nil {
			return fmt.Errorf("auditbun: verify: %w", err)
		}
		if !found {
			return &audit.Break{Seq: seq, Reason: "the chain head is missing"}
		}
	}
	return nil
}
