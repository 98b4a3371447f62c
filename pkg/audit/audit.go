// Package audit is the one audit trail of the portal: who did what to which
// object of a commune, from which address, written in the transaction of
// the change it records (both commit or neither does).
//
// The actor travels in the request's context: the web layer sets it once it
// knows who is calling (a resident's session, a staff session, an API key;
// anonymous with the client IP otherwise) and jobs run as the system unless
// they carry the actor who asked. Writers never pass an actor by hand, so
// none can forget the IP.
//
// Never put passwords, tokens or secrets in details.
package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/db"
)

// Actor kinds.
const (
	KindResident  = "resident"
	KindStaff     = "staff"
	KindOperator  = "operator"
	KindAPIKey    = "api_key"
	KindSystem    = "system"
	KindAnonymous = "anonymous"
)

// Kinds lists the actor kinds, for filters.
func Kinds() []string {
	return []string{KindResident, KindStaff, KindOperator, KindAPIKey, KindSystem, KindAnonymous}
}

// Actor is who acts: a kind, the id of the resident, staff user, operator
// or API key (0: none), and the client IP ("" for jobs).
type Actor struct {
	Kind string
	ID   int64
	IP   string
}

// System is the actor of jobs and of the command line.
var System = Actor{Kind: KindSystem}

type actorKey struct{}

// WithActor returns ctx carrying a as the actor of what follows.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor carried by ctx, System when none.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.Kind != "" {
		return a
	}
	return System
}

// As returns ctx with the actor changed to kind and id, keeping the client
// IP: a login that succeeds turns the anonymous caller into the resident.
func As(ctx context.Context, kind string, id int64) context.Context {
	a := ActorFrom(ctx)
	return WithActor(ctx, Actor{Kind: kind, ID: id, IP: a.IP})
}

// Object types.
const (
	ObjectAccount     = "account"
	ObjectInvoice     = "invoice"
	ObjectPayment     = "payment"
	ObjectStaffUser   = "staff_user"
	ObjectImportBatch = "import_batch"
	ObjectTenant      = "tenant"
	ObjectAPIKey      = "api_key"
	ObjectMessage     = "message"
)

// Object is what an entry is about; the zero Object means none.
type Object struct {
	Type string
	ID   string
}

// Of names the object of type typ with a numeric id.
func Of(typ string, id int64) Object {
	return Object{Type: typ, ID: strconv.FormatInt(id, 10)}
}

// Record appends one entry about obj to tenantID's trail with the actor of
// ctx, through x: pass the transaction of the change so that both commit
// or neither does.
func Record(ctx context.Context, x sqlx.ExecerContext, tenantID int64, action string, obj Object, details map[string]any) error {
	a := ActorFrom(ctx)
	body := []byte("{}")
	if len(details) > 0 {
		b, err := json.Marshal(details)
		if err != nil {
			return fmt.Errorf("audit: details of %s: %w", action, err)
		}
		body = b
	}
	var actorID sql.NullInt64
	if a.ID != 0 {
		actorID = sql.NullInt64{Int64: a.ID, Valid: true}
	}
	_, err := x.ExecContext(ctx, `INSERT INTO audit_log
		(tenant_id, actor_kind, actor_id, action, ip, object_type, object_id, details)
		VALUES ($1, $2, $3, $4, $5::inet, $6, $7, $8::jsonb)`,
		tenantID, a.Kind, actorID, action, ipValue(a.IP), obj.Type, obj.ID, string(body))
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", action, err)
	}
	return nil
}

// ipValue is the client address for the inet column; NULL when it does
// not parse (a zone is dropped, an IPv4-mapped IPv6 address unmapped).
func ipValue(ip string) sql.NullString {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return sql.NullString{}
	}
	return sql.NullString{String: a.Unmap().WithZone("").String(), Valid: true}
}

// Entry is one row of the trail.
type Entry struct {
	TenantID   int64           `db:"tenant_id"`
	ID         int64           `db:"id"`
	At         time.Time       `db:"at"`
	ActorKind  string          `db:"actor_kind"`
	ActorID    int64           `db:"actor_id"` // 0: none
	IP         string          `db:"ip"`       // "" when none
	Action     string          `db:"action"`
	ObjectType string          `db:"object_type"`
	ObjectID   string          `db:"object_id"`
	Details    json.RawMessage `db:"details"`
}

// Filter selects entries; zero fields select everything.
type Filter struct {
	ActorKind  string
	ActorID    int64
	ObjectType string
	ObjectID   string
	// Action matches entries whose action starts with it ("payment."
	// selects every payment transition).
	Action string
	// From and To bound the time of the entries: From <= at < To.
	From, To time.Time
	// Sort is one of Sorts ("" is DefaultSort).
	Sort string
}

// DefaultSort lists the most recent entries first.
const DefaultSort = "-at"

var sorts = map[string]string{
	"-at":     "at DESC, id DESC",
	"at":      "at, id",
	"-action": "action DESC, at DESC, id DESC",
	"action":  "action, at DESC, id DESC",
}

// Sorts lists the keys Filter.Sort accepts ("-" first: descending).
func Sorts() []string { return []string{"at", "action"} }

// searchWhere is the filter of Search and Count, in static SQL: a filter
// left empty is a constant true once PostgreSQL plans the query with its
// values, so each search uses the index that fits what it filters.
const searchWhere = `tenant_id = $1
	AND ($2 = '' OR actor_kind = $2)
	AND ($3::bigint = 0 OR actor_id = $3)
	AND ($4 = '' OR object_type = $4)
	AND ($5 = '' OR object_id = $5)
	AND ($6 = '' OR starts_with(action, $6))
	AND ($7::timestamptz IS NULL OR at >= $7)
	AND ($8::timestamptz IS NULL OR at < $8)`

func (f Filter) args(tenantID int64) []any {
	return []any{tenantID, f.ActorKind, f.ActorID, f.ObjectType, f.ObjectID, f.Action, nullTime(f.From), nullTime(f.To)}
}

func nullTime(t time.Time) sql.NullTime {
	return sql.NullTime{Time: t, Valid: !t.IsZero()}
}

// Search returns one page (1-based, perPage entries: see db.PageWindow) of
// tenantID's entries matching f, in f's order (most recent first by
// default), and how many match in all. A page past the last one is empty.
func Search(ctx context.Context, q sqlx.QueryerContext, tenantID int64, f Filter, page, perPage int) ([]Entry, int, error) {
	sort := f.Sort
	if sort == "" {
		sort = DefaultSort
	}
	order, ok := sorts[sort]
	if !ok {
		return nil, 0, fmt.Errorf("audit: unknown sort %q", f.Sort)
	}
	var total int
	if err := sqlx.GetContext(ctx, q, &total, `SELECT count(*) FROM audit_log WHERE `+searchWhere, f.args(tenantID)...); err != nil {
		return nil, 0, fmt.Errorf("audit: search: %w", err)
	}
	entries := []Entry{}
	limit, offset, ok := db.PageWindow(page, perPage, total)
	if !ok {
		return entries, total, nil
	}
	args := append(f.args(tenantID), limit, offset)
	err := sqlx.SelectContext(ctx, q, &entries, `SELECT tenant_id, id, at, actor_kind, coalesce(actor_id, 0) AS actor_id,
		coalesce(host(ip), '') AS ip, action, object_type, object_id, details
		FROM audit_log WHERE `+searchWhere+`
		ORDER BY `+order+` LIMIT $9 OFFSET $10`, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: search: %w", err)
	}
	return entries, total, nil
}
