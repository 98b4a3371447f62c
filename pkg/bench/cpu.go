package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuSnap is the CPU time used so far by the server, the PostgreSQL
// cluster and the bench itself (load generator, S3 server, SMTP catcher).
type cpuSnap struct {
	at                      time.Time
	server, pg, bench, busy time.Duration // busy: the whole machine's
}

// cpuShare is each one's CPU over an interval, in cores (2.0 = both cores).
type cpuShare struct {
	server, pg, bench, other float64 // other: processes outside the bench
}

const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux

// procStat returns a process's parent and CPU time from /proc/PID/stat.
func procStat(pid string) (ppid string, cpu time.Duration, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return "", 0, false
	}
	// Fields after the command name, which may hold spaces: state ppid … utime(14) stime(15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return "", 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return f[1], time.Duration(u+s) * clockTick, true
}

// machineBusy is the CPU time all cores spent out of idle since boot.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	var busy int64
	for i := 1; i < len(f) && i <= 8; i++ {
		if i == 4 || i == 5 {
			continue // idle, iowait
		}
		n, _ := strconv.ParseInt(f[i], 10, 64)
		busy += n
	}
	return time.Duration(busy) * clockTick
}

func (r *run) cpuSnapshot(srv *server) cpuSnap {
	snap := cpuSnap{at: time.Now(), busy: machineBusy()}
	if srv != nil {
		_, snap.server, _ = procStat(strconv.Itoa(srv.pid()))
	}
	_, snap.bench, _ = procStat("self")
	if r.pg == nil {
		return snap
	}
	pidFile, err := os.ReadFile(filepath.Join(r.pg.Dir, "postmaster.pid"))
	if err != nil {
		return snap
	}
	postmaster := strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0])
	_, snap.pg, _ = procStat(postmaster)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if ppid, cpu, ok := procStat(e.Name()); ok && ppid == postmaster {
			snap.pg += cpu
		}
	}
	return snap
}

func (a cpuSnap) to(b cpuSnap) cpuShare {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return cpuShare{}
	}
	c := cpuShare{
		server: (b.server - a.server).Seconds() / d,
		pg:     (b.pg - a.pg).Seconds() / d,
		bench:  (b.bench - a.bench).Seconds() / d,
	}
	c.other = max(0, (b.busy-a.busy).Seconds()/d-c.server-c.pg-c.bench)
	return c
}
