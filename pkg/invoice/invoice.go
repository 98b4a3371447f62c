// Package invoice holds the communes' invoices: the model, the resident's
// queries, and the parsing of French amounts and dates. Whether an invoice
// can be paid now is the payment package's rule; the billing software's
// files are imported by pkg/imports.
//
// Every query takes the tenant id, and the resident's ones the account id,
// as parameters that callers take from the resolved request context and the
// session, never from request input.
package invoice

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/blob"
	"portail/pkg/db"
)

// Blobs reads stored PDFs (*blob.Store).
type Blobs interface {
	// Get streams key, failing at the end when the bytes differ from wantSHA256.
	Get(ctx context.Context, key, wantSHA256 string) (io.ReadCloser, int64, error)
}

// Status is the official state of an invoice, set by the commune.
type Status string

// Invoice statuses.
const (
	StatusUnpaid    Status = "unpaid"
	StatusPaid      Status = "paid"
	StatusTreasury  Status = "treasury"  // not paid in time, sent to the public treasury
	StatusCancelled Status = "cancelled" // hidden from residents
)

// Valid tells whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusUnpaid, StatusPaid, StatusTreasury, StatusCancelled:
		return true
	}
	return false
}

// Label is the status as the resident's filter names it.
func (s Status) Label() string {
	switch s {
	case StatusUnpaid:
		return "non réglée"
	case StatusPaid:
		return "réglée"
	case StatusTreasury:
		return "en trésorerie"
	case StatusCancelled:
		return "annulée"
	}
	return string(s)
}

// How an invoice was paid.
const (
	PaidOnline      = "online"       // PayFiP through the portal
	PaidElsewhere   = "elsewhere"    // counter, cheque, treasury: told by staff or the billing file
	PaidDirectDebit = "direct_debit" // automatic debit
)

// Invoice is one invoice of a payer (account).
type Invoice struct {
	TenantID         int64      `db:"tenant_id" json:"-"`
	ID               int64      `db:"id" json:"id"`
	AccountID        int64      `db:"account_id" json:"account_id"`
	Number           string     `db:"number" json:"number"`
	Object           string     `db:"object" json:"object"`
	IssuedOn         time.Time  `db:"issued_on" json:"issued_on"`
	DueOn            time.Time  `db:"due_on" json:"due_on"`
	AmountCents      int64      `db:"amount_cents" json:"amount_cents"`
	Status           Status     `db:"status" json:"status"`
	PaidAt           *time.Time `db:"paid_at" json:"paid_at,omitempty"`
	PaidHow          string     `db:"paid_how" json:"paid_how,omitempty"`
	DirectDebit      bool       `db:"direct_debit" json:"direct_debit"`
	PaymentSuspended bool       `db:"payment_suspended" json:"payment_suspended"`
	DeclaredPaidAt   *time.Time `db:"declared_paid_at" json:"declared_paid_at,omitempty"`
	PDFKey           string     `db:"pdf_key" json:"-"`
	PDFSHA256        string     `db:"pdf_sha256" json:"pdf_sha256,omitempty"`
	PDFSize          int64      `db:"pdf_size" json:"pdf_size,omitempty"`
	ImportBatchID    *int64     `db:"import_batch_id" json:"import_batch_id,omitempty"`
	CreatedAt        time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at" json:"updated_at"`
}

// HasPDF tells whether the invoice's PDF was uploaded.
func (inv Invoice) HasPDF() bool { return inv.PDFKey != "" }

// Amount is the amount written the French way: "243,11 €".
func (inv Invoice) Amount() string { return FormatAmount(inv.AmountCents) }

const invoiceColumns = `tenant_id, id, account_id, number, object, issued_on, due_on, amount_cents,
	status, paid_at, paid_how, direct_debit, payment_suspended, declared_paid_at,
	pdf_key, pdf_sha256, pdf_size, import_batch_id, created_at, updated_at`

// Columns lists the columns an Invoice scans, qualified by alias (e.g.
// "i"), for queries that join invoices with other tables.
func Columns(alias string) string {
	fields := strings.Split(invoiceColumns, ",")
	for i, f := range fields {
		fields[i] = alias + "." + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

// Errors of the resident's queries.
var (
	// ErrNotFound is returned for an invoice that does not exist or belongs
	// to another account or tenant: callers answer 404 either way.
	ErrNotFound = errors.New("invoice: not found")
	// ErrNoPDF is returned by OpenPDF for an invoice without PDF.
	ErrNoPDF = errors.New("invoice: no PDF for this invoice")
	// ErrNotDeclarable is returned when marking a paid or cancelled invoice
	// as paid by other means.
	ErrNotDeclarable = errors.New("invoice: only unpaid or treasury invoices can be declared paid")
)

// Store runs the invoice queries of residents (account-bound) and staff
// (commune-wide: Search, Each, GetByNumber).
type Store struct {
	DB *sqlx.DB
}

// Page sizes of Search (a resident's list shows DefaultPerPage).
const (
	DefaultPerPage = db.DefaultPerPage
	MaxPerPage     = db.MaxPerPage
)

// Counts returns how many of the account's invoices are unpaid, paid and in
// treasury (zero entries included; cancelled ones are not counted).
func (s *Store) Counts(ctx context.Context, tenantID, accountID int64) (map[Status]int, error) {
	var rows []struct {
		Status Status `db:"status"`
		N      int    `db:"n"`
	}
	err := s.DB.SelectContext(ctx, &rows, `
		SELECT status, count(*) AS n FROM invoices
		WHERE tenant_id = $1 AND account_id = $2 AND status <> 'cancelled'
		GROUP BY status`, tenantID, accountID)
	if err != nil {
		return nil, fmt.Errorf("invoice: counts: %w", err)
	}
	m := map[Status]int{StatusUnpaid: 0, StatusPaid: 0, StatusTreasury: 0}
	for _, r := range rows {
		m[r.Status] = r.N
	}
	return m, nil
}

// Get returns one of the account's invoices; ErrNotFound when it belongs to
// another account or tenant, or is cancelled.
func (s *Store) Get(ctx context.Context, tenantID, accountID, invoiceID int64) (Invoice, error) {
	var inv Invoice
	err := s.DB.GetContext(ctx, &inv, `
		SELECT `+invoiceColumns+` FROM invoices
		WHERE tenant_id = $1 AND account_id = $2 AND id = $3 AND status <> 'cancelled'`,
		tenantID, accountID, invoiceID)
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, ErrNotFound
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice: get: %w", err)
	}
	return inv, nil
}

// MarkDeclaredPaid sets (paid true) or clears the resident's own "paid by
// other means" marker, and records it in the invoice's history. It never
// changes the official status; setting it twice keeps the first date. Only
// unpaid and treasury invoices can be marked (ErrNotDeclarable); the marker
// can always be cleared.
func (s *Store) MarkDeclaredPaid(ctx context.Context, tenantID, accountID, invoiceID int64, paid bool) error {
	var changed bool
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var res sql.Result
		var err error
		action := "invoice.declared_paid"
		if paid {
			res, err = tx.ExecContext(ctx, `
				UPDATE invoices SET declared_paid_at = now(), updated_at = now()
				WHERE tenant_id = $1 AND account_id = $2 AND id = $3 AND status IN ('unpaid', 'treasury')
				  AND declared_paid_at IS NULL`,
				tenantID, accountID, invoiceID)
		} else {
			action = "invoice.declared_unpaid"
			res, err = tx.ExecContext(ctx, `
				UPDATE invoices SET declared_paid_at = NULL, updated_at = now()
				WHERE tenant_id = $1 AND account_id = $2 AND id = $3 AND status <> 'cancelled'
				  AND declared_paid_at IS NOT NULL`,
				tenantID, accountID, invoiceID)
		}
		if err != nil {
			return fmt.Errorf("invoice: declare paid: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		changed = true
		return audit.Record(audit.As(ctx, audit.KindResident, accountID), tx, tenantID, action,
			audit.Of(audit.ObjectInvoice, invoiceID), nil)
	})
	if err != nil || changed {
		return err
	}
	// Nothing changed: tell an unknown invoice from a no-op or a paid one.
	inv, err := s.Get(ctx, tenantID, accountID, invoiceID)
	if err != nil {
		return err
	}
	if paid && inv.Status != StatusUnpaid && inv.Status != StatusTreasury {
		return ErrNotDeclarable
	}
	return nil
}

// Reasons an invoice cannot be paid online, as the resident reads them
// (the payment package's payability rule gives them).
const (
	ReasonPaid        = "Cette facture est déjà réglée."
	ReasonCancelled   = "Cette facture a été annulée."
	ReasonTreasury    = "Cette facture n'a pas été réglée dans les délais imposés : elle a été transmise en trésorerie. Un avis de somme à payer vous sera transmis par courrier pour procéder au règlement auprès du Trésor public."
	ReasonDirectDebit = "Ma facture est en prélèvement automatique."
	ReasonSuspended   = "Le paiement a été temporairement suspendu."
	ReasonUnavailable = "Le paiement en ligne n'est pas disponible pour le moment."
)

// PDFKey is where the PDF of invoice number of tenantID with the given
// SHA-256 is stored: tenant-prefixed and content-addressed, so a key is never
// overwritten with other bytes.
func PDFKey(tenantID int64, number, sha256hex string) string {
	return fmt.Sprintf("t/%d/invoices/%s/%s.pdf", tenantID, number, sha256hex)
}

// OpenPDF opens inv's PDF; the stream fails (blob.ErrChecksumMismatch)
// rather than end normally if the stored bytes differ from those imported.
// Check ownership first (Get with the session's account), then call it.
func OpenPDF(ctx context.Context, blobs Blobs, inv Invoice) (io.ReadCloser, int64, error) {
	if inv.PDFKey == "" || inv.PDFSHA256 == "" {
		return nil, 0, ErrNoPDF
	}
	// Defence in depth: never serve a key outside the invoice's tenant.
	if !strings.HasPrefix(inv.PDFKey, fmt.Sprintf("t/%d/invoices/", inv.TenantID)) {
		return nil, 0, fmt.Errorf("invoice: PDF key %q outside tenant %d", inv.PDFKey, inv.TenantID)
	}
	rc, size, err := blobs.Get(ctx, inv.PDFKey, inv.PDFSHA256)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, 0, fmt.Errorf("invoice: PDF of %s missing from the store: %w", inv.Number, err)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("invoice: open PDF of %s: %w", inv.Number, err)
	}
	return rc, size, nil
}
