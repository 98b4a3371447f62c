// Package paris is the time zone the portal's communes live in: due dates,
// PayFiP's dattrans/heurtrans, the months of the staff's dashboard and every
// date shown are Paris dates, whatever the server's own zone (UTC in a
// container).
package paris

import (
	"time"
	_ "time/tzdata" // the zone loads on a machine without a zone database
)

// Location is Europe/Paris.
var Location = load()

func load() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic("paris: " + err.Error()) // cannot happen: time/tzdata is embedded
	}
	return l
}
