package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// report is everything the table shows.
type report struct {
	machine   string
	data      string
	idleRSS   int64
	rows      []scenarioRow
	imp       importResult
	sizes     []sizePoint
	logins    loginsResult
	enumRows  []enumerationResult
	stateless *statelessResult
	heavy     []heavyRow // a resident with 10,000 unpaid invoices (heavy.go)
	notes     []string
	noisy     []string // scenarios during which other processes used the CPU
	failure   string
	// importMemory: uploads through the API against the server's RSS (imports.go).
	importMemory []importMemoryRow
	// The back office's rows (staff.go).
	staffSearch *staffSearchResult
	exports     []exportResult
}

type scenarioRow struct {
	sc         scenario
	m          measure
	ceil       ceiling
	listTarget bool // the p99 target applies
}

type sizePoint struct {
	invoices int
	m        measure
}

type importResult struct {
	files, lines int
	elapsed      time.Duration
	bigLines     int
	bigSlug      string
	bigElapsed   time.Duration
	raw          time.Duration
}

func (i importResult) rate() float64    { return float64(i.bigLines) / max(i.bigElapsed.Seconds(), 1e-9) }
func (i importResult) rawRate() float64 { return float64(i.bigLines) / max(i.raw.Seconds(), 1e-9) }

type loginsResult struct {
	peak, bound, clients, requests, errors int
	memKiB                                 int // argon2id memory of one hash
	rss                                    int64
	err                                    string
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// print writes the one table.
func (rep *report) print(w io.Writer, r *run) {
	line := strings.Repeat("─", 178)
	fmt.Fprintf(w, "\nPortail des factures — make bench (portail bench)\n")
	fmt.Fprintf(w, "machine   %s\n", rep.machine)
	if rep.data != "" {
		fmt.Fprintf(w, "data      %s; one bench resident per commune (%d invoices each, same at every size)\n", rep.data, residentInvoices)
		fmt.Fprintf(w, "load      vegeta over loopback, closed loop (each client sends its next request on the answer), %s per scenario after %s warm-up;\n", r.o.Duration, r.o.Warmup)
		fmt.Fprintf(w, "          server = the built binary (`portail serve`) in its own process, RSS from /proc (VmHWM reset per scenario); idle RSS %s\n", mb(rep.idleRSS))
		fmt.Fprintf(w, "          CPU srv/pg/lg/ot = cores used by the server, PostgreSQL, the load generator (with the S3 and SMTP stand-ins) and other processes\n")
		if r.o.DBParams != "" {
			fmt.Fprintf(w, "          server database URL parameters: %s\n", r.o.DBParams)
		}
		if len(r.o.ServerEnv) > 0 {
			fmt.Fprintf(w, "          server environment: %s\n", strings.Join(r.o.ServerEnv, " "))
		}
	}
	fmt.Fprintln(w, line)
	fmt.Fprintf(w, "%-14s %-27s %7s %8s %8s %8s %7s %9s %18s │ %-27s %8s %8s %6s │ %-27s %s\n",
		"scenario", "request", "clients", "req/s", "p50", "p99", "errors", "peak RSS", "CPU srv/pg/lg/ot", "ceiling (same work, raw)", "/s", "p99", "ratio", "target", "")
	fmt.Fprintln(w, line)
	var peakRSS int64
	for _, row := range rep.rows {
		m := row.m
		peakRSS = max(peakRSS, m.peakRSS)
		target, ok := "RSS ≤ 150 MB", m.peakRSS <= targetRSS && m.errors == 0
		switch {
		case row.listTarget:
			target, ok = "p99 ≤ 20 ms, RSS ≤ 150 MB", m.p99 <= targetListP99 && ok
		case row.sc.rate > 0:
			target = "(latency below saturation)"
		case row.sc.name == "login":
			target = fmt.Sprintf("≤ %d hashes at once, RSS", rep.logins.bound)
			ok = ok && rep.logins.peak >= 1 && rep.logins.peak <= rep.logins.bound
		}
		ratio, rate, p99 := "", "", ""
		if row.ceil.rate > 0 {
			ratio, rate = fmt.Sprintf("%.2f", m.rps/row.ceil.rate), fmt.Sprintf("%.0f", row.ceil.rate)
		}
		if row.ceil.p99 > 0 {
			p99 = ms(row.ceil.p99)
		}
		fmt.Fprintf(w, "%-14s %-27s %7d %8.0f %8s %8s %7d %9s %18s │ %-27s %8s %8s %6s │ %-27s %s\n",
			row.sc.name, clip(row.sc.label, 27), row.sc.clients, m.rps, ms(m.p50), ms(m.p99), m.errors, mb(m.peakRSS),
			fmt.Sprintf("%.1f/%.1f/%.1f/%.1f", m.cpu.server, m.cpu.pg, m.cpu.bench, m.cpu.other),
			clip(row.ceil.label, 27), rate, p99, ratio, target, verdict(ok))
	}
	fmt.Fprintln(w, line)
	rep.printHeavy(w, line, r.o.Clients)
	if rep.imp.bigLines > 0 {
		i := rep.imp
		fmt.Fprintf(w, "%-14s %-27s %7s %8.0f %-55s │ %-27s %8.0f %8s %6.2f │ %-27s %s\n",
			"import", fmt.Sprintf("largest file (%s)", i.bigSlug), "lines/s", i.rate(),
			fmt.Sprintf("  %s lines in %s", num(i.bigLines), i.bigElapsed.Round(time.Millisecond)),
			"raw COPY, same rows", i.rawRate(), "", i.rate()/i.rawRate(), "≥ 50,000 lines/s", verdict(i.rate() >= targetImportRate))
		fmt.Fprintf(w, "%-14s %-27s %7s %8.0f %-55s │\n", "", "all seeding files", "lines/s",
			float64(i.lines)/max(i.elapsed.Seconds(), 1e-9), fmt.Sprintf("  %s lines, %d files, %s", num(i.lines), i.files, i.elapsed.Round(time.Second)))
	}
	rep.printImportMemory(w)
	rep.printStaff(w)
	if len(rep.sizes) >= 2 {
		s0 := rep.sizes[0]
		for _, s := range rep.sizes[1:] {
			ratio := float64(s.m.p50) / float64(max(s0.m.p50, 1))
			fmt.Fprintf(w, "%-14s %-27s %7s %8s %-55s │ %-27s %8s %8s %6.2f │ %-27s %s\n",
				"flat cost", "list median, by invoices", "", "",
				fmt.Sprintf("  %s: %s → %s: %s", short(s0.invoices), ms(s0.m.p50), short(s.invoices), ms(s.m.p50)),
				"", "", "", ratio, "ratio ≤ 1.20", verdict(ratio <= targetFlatRatio))
		}
	}
	if len(rep.rows) > 0 {
		fmt.Fprintf(w, "%-14s %-27s %7s %8s %-55s │ %-27s %8s %8s %6s │ %-27s %s\n",
			"memory", "peak RSS under load", "", "", "  "+mb(peakRSS), "", "", "", "", "≤ 150 MB", verdict(peakRSS <= targetRSS))
	}
	if l := rep.logins; l.clients > 0 || l.err != "" {
		fmt.Fprintf(w, "%-14s %-27s %7d %8s %-55s │ %-27s %8s %8s %6s │ %-27s %s\n",
			"argon2 bound", "in-process login storm", l.clients, "",
			fmt.Sprintf("  hasher peak %d in flight (%d logins)", l.peak, l.requests),
			fmt.Sprintf("bound %d × %.0f MiB = %.0f MiB", l.bound, float64(l.memKiB)/1024, float64(l.bound*l.memKiB)/1024), "", "", "", fmt.Sprintf("peak ≤ %d", l.bound),
			verdict(l.err == "" && l.peak >= 1 && l.peak <= l.bound))
	}
	printEnumeration(w, rep.enumRows)
	if st := rep.stateless; st != nil {
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "stateless   two `portail serve` instances (A, B) behind a round-robin reverse proxy with health checks\n")
		fmt.Fprintf(w, "  %-86s %s\n", fmt.Sprintf("one session, %d pages through the proxy: served by A %d, by B %d", st.through, st.perInstance[0], st.perInstance[1]),
			verdict(st.perInstance[0] > 0 && st.perInstance[1] > 0))
		fmt.Fprintf(w, "  %-86s %s\n", "session opened on A served by B, and one opened on B served by A", verdict(st.crossSession))
		fmt.Fprintf(w, "  %-86s %s\n", "A stopped: the balancer's session goes on, served by B", verdict(st.afterStop))
		fmt.Fprintf(w, "  %-86s %s\n", fmt.Sprintf("%d payments started on A, PayFiP return sent to A and B at once: %d transitions, %d invoices paid",
			st.payments, st.transitions, st.paidInvoices), verdict(st.payments > 0 && st.transitions == st.payments && st.paidInvoices == st.payments))
		fmt.Fprintf(w, "  %-86s %s\n", fmt.Sprintf("jobs: %d confirmation emails enqueued, %d sent (worked by %s)", st.payments, st.emails, workers(st.workedBy)),
			verdict(st.emails == st.payments))
		for _, n := range st.notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	fmt.Fprintln(w, line)
	for _, n := range rep.notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(rep.noisy) > 0 {
		fmt.Fprintf(w, "WARNING: other processes used the CPU during %s: those numbers understate the portal; run again on a quiet machine\n", strings.Join(rep.noisy, ", "))
	}
	if rep.failure != "" {
		fmt.Fprintf(w, "FAILED: %s\n", rep.failure)
	}
}

func clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// short writes 100000 as "100k" and 10000000 as "10M".
func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return num(n)
}

func workers(m map[string]int) string {
	if len(m) == 0 {
		return "?"
	}
	var ns []string
	for _, v := range m {
		ns = append(ns, strconv.Itoa(v))
	}
	sort.Strings(ns)
	return fmt.Sprintf("%d River clients: %s", len(m), strings.Join(ns, " + "))
}

// machineInfo describes the machine: cores, CPU model, memory, Go.
func machineInfo() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				mem = fmt.Sprintf(", %.1f GiB", kb/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d cores (nproc), %s%s, %s %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
