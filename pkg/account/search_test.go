package account

import (
	"slices"
	"testing"
)

func TestSearchPayers(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "SISTEC560", "Hélène DUPONT", "helene@demo.fr", StatusActive, "")
	e.newAccount(e.a, "SISTEC561", "Jean Martin", "jean.martin@demo.fr", StatusPending, "")
	e.newAccount(e.a, "REF_9", "Zoé Lefèvre", "zoe@exemple.fr", StatusDisabled, "")
	e.newAccount(e.b, "SISTEC562", "Hélène Autre", "helene@autre.fr", StatusActive, "")
	if _, err := e.db.Exec(`UPDATE accounts SET paperless = true, paperless_at = now() WHERE email = 'jean.martin@demo.fr'`); err != nil {
		t.Fatal(err)
	}
	refs := func(q Query) []string {
		t.Helper()
		list, total, err := e.svc.Search(e.ctx, e.a.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, a := range list {
			out = append(out, a.ExternalRef)
		}
		var streamed []string
		if err := e.svc.Each(e.ctx, e.a.ID, q, func(a Account) error { streamed = append(streamed, a.ExternalRef); return nil }); err != nil {
			t.Fatal(err)
		}
		if total != len(out) || (len(out) > 0 && !slices.Equal(streamed, out)) {
			t.Fatalf("%+v: total %d, page %v, streamed %v", q, total, out, streamed)
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    Query
		want []string
	}{
		{"all, by name", Query{}, []string{"SISTEC560", "SISTEC561", "REF_9"}},
		{"name, accents and case aside", Query{Text: "HELENE"}, []string{"SISTEC560"}},
		{"email part", Query{Text: "@demo.fr"}, []string{"SISTEC560", "SISTEC561"}},
		{"reference part", Query{Text: "c56"}, []string{"SISTEC560", "SISTEC561"}},
		{"underscore as written", Query{Text: "f_"}, []string{"REF_9"}},
		{"statuses", Query{Status: []string{StatusPending, StatusDisabled}}, []string{"SISTEC561", "REF_9"}},
		{"paperless", Query{Paperless: OnlyPaperless}, []string{"SISTEC561"}},
		{"paper", Query{Paperless: OnlyPaper, Sort: "-reference"}, []string{"SISTEC560", "REF_9"}},
	} {
		if got := refs(c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if _, _, err := e.svc.Search(e.ctx, e.a.ID, Query{Paperless: "maybe"}); err == nil {
		t.Error("unknown paperless filter accepted")
	}
	if _, _, err := e.svc.Search(e.ctx, e.a.ID, Query{Sort: "password_hash"}); err == nil {
		t.Error("unknown sort accepted")
	}
}
