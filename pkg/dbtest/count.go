package dbtest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// QueryCounter records the statements sent through a pool opened by
// NewCounted: a test can then bound how many queries a page runs (the
// mechanism, not the time it takes).
type QueryCounter struct {
	mu         sync.Mutex
	statements []Statement
}

// Statement is one statement sent, with its arguments (none for a
// statement being prepared), so that a test can run it again under
// EXPLAIN.
type Statement struct {
	Query string
	Args  []any
}

// Reset forgets the statements recorded so far.
func (c *QueryCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statements = nil
}

// Queries returns the statements recorded since the last Reset, in order.
// A prepared statement counts once, when prepared.
func (c *QueryCounter) Queries() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.statements))
	for i, st := range c.statements {
		out[i] = st.Query
	}
	return out
}

// Statements is Queries with each statement's arguments.
func (c *QueryCounter) Statements() []Statement {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.statements)
}

func (c *QueryCounter) add(q string, args []driver.NamedValue) {
	st := Statement{Query: q}
	for _, a := range args {
		st.Args = append(st.Args, a.Value)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statements = append(c.statements, st)
}

// NewCounted is New whose pool records every statement in the counter.
func NewCounted(t testing.TB) (*sqlx.DB, *QueryCounter) {
	t.Helper()
	conn, err := pq.NewConnector(NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := &QueryCounter{}
	d := sqlx.NewDb(sql.OpenDB(countingConnector{inner: conn, counter: c}), "postgres")
	d.SetMaxOpenConns(10)
	d.SetMaxIdleConns(10)
	d.SetConnMaxIdleTime(5 * time.Minute)
	t.Cleanup(func() { d.Close() })
	if err := d.Ping(); err != nil {
		t.Fatal(err)
	}
	return d, c
}

type countingConnector struct {
	inner   driver.Connector
	counter *QueryCounter
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, counter: cc.counter}, nil
}

func (cc countingConnector) Driver() driver.Driver { return cc.inner.Driver() }

// countingConn passes everything to lib/pq's connection, recording each
// statement on the way.
type countingConn struct {
	driver.Conn
	counter *QueryCounter
}

var errNotSupported = errors.New("dbtest: the driver's connection lacks this method")

func (cn *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := cn.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	cn.counter.add(query, args)
	return q.QueryContext(ctx, query, args)
}

func (cn *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	x, ok := cn.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	cn.counter.add(query, args)
	return x.ExecContext(ctx, query, args)
}

func (cn *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	cn.counter.add(query, nil)
	if p, ok := cn.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return cn.Conn.Prepare(query)
}

func (cn *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := cn.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return nil, errNotSupported
}

func (cn *countingConn) Ping(ctx context.Context) error {
	if p, ok := cn.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (cn *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := cn.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (cn *countingConn) IsValid() bool {
	if v, ok := cn.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (cn *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := cn.Conn.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
