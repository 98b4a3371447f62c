package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Unavailable tells whether err means PostgreSQL could not be reached or
// dropped the connection — refused, reset, shut down by an administrator,
// starting up, out of connection slots, timed out — rather than a fault of
// the query or the data. The same request may succeed a moment later, so
// callers answer "try again later" (HTTP 503) instead of "internal error".
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, context.DeadlineExceeded), // a bounded wait for a connection or an answer
		errors.Is(err, io.ErrUnexpectedEOF),      // the server closed the socket mid-answer
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true // dial failures and network timeouts
	}
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		code := state.SQLState()
		switch {
		case strings.HasPrefix(code, "08"): // connection_exception
			return true
		case code == "57P01", code == "57P02", code == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		case code == "53300": // too_many_connections
			return true
		}
	}
	return false
}
