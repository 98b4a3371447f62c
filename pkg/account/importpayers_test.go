package account

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

func (e *env) importPayers(s string) Report {
	e.t.Helper()
	r, err := e.svc.ImportPayers(e.ctx, e.a.ID, strings.NewReader(s))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func TestImportPayersUTF8BOMAndIdempotent(t *testing.T) {
	e := newEnv(t)
	file := "\ufeffRéférence;Nom affiché;Adresse mail;Autre colonne\n" +
		"R1;Test SISTEC560;Demo@Demo.fr;x\n" +
		"R2;  Élodie   Brûlé ;elodie@exemple.fr;y\n" +
		";;;\n" +
		"R3;Sans mail;;z\n"
	rep := e.importPayers(file)
	if rep.Inserted != 2 || rep.Updated != 0 || rep.Unchanged != 0 || len(rep.Rejected) != 1 || rep.Rejected[0].Line != 5 {
		t.Fatalf("first import %+v", rep)
	}
	a, err := e.svc.FindByEmail(e.ctx, e.a.ID, "demo@demo.fr")
	if err != nil || a.ExternalRef != "R1" || a.DisplayName != "Test SISTEC560" || a.Status != StatusPending {
		t.Fatalf("account %+v %v", a, err)
	}
	if a, _ := e.svc.FindByEmail(e.ctx, e.a.ID, "elodie@exemple.fr"); a.DisplayName != "Élodie Brûlé" {
		t.Fatalf("name %q", a.DisplayName)
	}
	rep = e.importPayers(file)
	if rep.Inserted != 0 || rep.Updated != 0 || rep.Unchanged != 2 || len(rep.Rejected) != 1 {
		t.Fatalf("second import %+v", rep)
	}
	// Other tenants are untouched.
	if n := e.count(`SELECT count(*) FROM accounts WHERE tenant_id = $1`, e.b.ID); n != 0 {
		t.Fatal("rows in tenant B")
	}
}

func TestImportPayersWindows1252(t *testing.T) {
	e := newEnv(t)
	utf := "reference;nom;email\r\nR1;Hervé Lœuillet;herve@exemple.fr\r\n"
	cp, err := charmap.Windows1252.NewEncoder().Bytes([]byte(utf))
	e.must(err)
	if bytes.Equal(cp, []byte(utf)) {
		t.Fatal("encoding did nothing")
	}
	r, err := e.svc.ImportPayers(e.ctx, e.a.ID, bytes.NewReader(cp))
	e.must(err)
	if r.Inserted != 1 {
		t.Fatalf("%+v", r)
	}
	a, _ := e.svc.FindByEmail(e.ctx, e.a.ID, "herve@exemple.fr")
	if a.DisplayName != "Hervé Lœuillet" {
		t.Fatalf("decoded name %q", a.DisplayName)
	}
}

func TestImportPayersRejectsLines(t *testing.T) {
	e := newEnv(t)
	e.newAccount(e.a, "OLD", "Ancien", "pris@exemple.fr", StatusPending, "")
	file := strings.Join([]string{
		"REF;NOM;MAIL",
		"R1;Un;un@exemple.fr",                // 2 ok
		"R2;Deux;pas-une-adresse",            // 3 invalid email
		";Trois;trois@exemple.fr",            // 4 no reference
		"R1;Un bis;unbis@exemple.fr",         // 5 duplicate reference
		"R5;Cinq;UN@exemple.fr",              // 6 duplicate email in file
		"R6;Six;pris@exemple.fr",             // 7 used by another reference
		"R7;Sept",                            // 8 missing columns
		"R8;;huit@exemple.fr",                // 9 no name
		"R9;Neuf;neuf@exemple.fr",            // 10 ok
		`R10;"Dupont ""Jo""";dix@exemple.fr`, // 11 ok, quoted
	}, "\n")
	rep := e.importPayers(file)
	wantLines := []int{3, 4, 5, 6, 7, 8, 9}
	if rep.Inserted != 3 || len(rep.Rejected) != len(wantLines) {
		t.Fatalf("%+v", rep)
	}
	for i, l := range wantLines {
		if rep.Rejected[i].Line != l || rep.Rejected[i].Reason == "" {
			t.Fatalf("rejected[%d] = %+v, want line %d (all %+v)", i, rep.Rejected[i], l, rep.Rejected)
		}
	}
	if !strings.Contains(rep.Rejected[4].Reason, "OLD") {
		t.Fatalf("reason %q", rep.Rejected[4].Reason)
	}
	if a, _ := e.svc.FindByEmail(e.ctx, e.a.ID, "dix@exemple.fr"); a == nil || a.DisplayName != `Dupont "Jo"` {
		t.Fatalf("quoted name %+v", a)
	}
}

func TestImportPayersStructuralErrorsWriteNothing(t *testing.T) {
	e := newEnv(t)
	for name, file := range map[string]string{
		"empty":          "",
		"missing column": "reference;nom\nR1;Un\n",
		"commas":         "reference,nom,email\nR1,Un,un@exemple.fr\n",
		"bad quoting":    "reference;nom;email\nR1;Un;un@exemple.fr\nR2;\"Deux;deux@exemple.fr\n",
		"duplicate col":  "reference;nom;email;mail\nR1;Un;un@exemple.fr;x@y.fr\n",
	} {
		_, err := e.svc.ImportPayers(e.ctx, e.a.ID, strings.NewReader(file))
		var ie *InputError
		if !errors.As(err, &ie) || ie.Message == "" {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if name == "commas" && !strings.Contains(ie.Message, "points-virgules") {
			t.Errorf("separator not explained: %q", ie.Message)
		}
	}
	if n := e.count(`SELECT count(*) FROM accounts`); n != 0 {
		t.Fatalf("%d accounts written", n)
	}
}

func TestImportPayersUpdatesAndSwaps(t *testing.T) {
	e := newEnv(t)
	e.importPayers("reference;nom;email\nA;Alice;a@exemple.fr\nB;Bob;b@exemple.fr\nC;Carole;c@exemple.fr\n")
	active := e.newAccount(e.a, "D", "Denis", "d@exemple.fr", StatusActive, goodPassword)
	// A and B swap addresses; C is renamed; D (activated) keeps its login.
	rep := e.importPayers("reference;nom;email\nA;Alice;b@exemple.fr\nB;Bob;a@exemple.fr\nC;Carole Martin;c@exemple.fr\nD;Denis;autre@exemple.fr\n")
	if rep.Updated != 3 || rep.Unchanged != 1 || len(rep.Rejected) != 0 || len(rep.Notes) != 1 || rep.Notes[0].Line != 5 {
		t.Fatalf("%+v", rep)
	}
	for ref, email := range map[string]string{"A": "b@exemple.fr", "B": "a@exemple.fr", "C": "c@exemple.fr", "D": "d@exemple.fr"} {
		var got string
		e.must(e.db.Get(&got, `SELECT email FROM accounts WHERE tenant_id = $1 AND external_ref = $2`, e.a.ID, ref))
		if got != email {
			t.Errorf("%s: %s, want %s", ref, got, email)
		}
	}
	if a, _ := e.svc.Get(e.ctx, e.a.ID, active.ID); a.Status != StatusActive {
		t.Fatal("active account changed")
	}
	// A new payer cannot take the activated account's address.
	rep = e.importPayers("reference;nom;email\nE;Eve;d@exemple.fr\n")
	if len(rep.Rejected) != 1 {
		t.Fatalf("%+v", rep)
	}
}

func TestImportPayersManyLines(t *testing.T) {
	e := newEnv(t)
	var b strings.Builder
	b.WriteString("reference;nom;email\n")
	for i := range 12000 {
		fmt.Fprintf(&b, "R%05d;Redevable %d;r%d@exemple.fr\n", i, i, i)
	}
	rep := e.importPayers(b.String())
	if rep.Inserted != 12000 {
		t.Fatalf("%+v", rep.Inserted)
	}
	rep = e.importPayers(b.String())
	if rep.Unchanged != 12000 {
		t.Fatalf("%+v", rep.Unchanged)
	}
}

func FuzzParsePayers(f *testing.F) {
	f.Add("reference;nom;email\nR1;Un;un@exemple.fr\n")
	f.Add("\ufeffRéférence;Nom affiché;Adresse mail\r\nR1;\"A;B\";x@y.fr\r\n")
	f.Add("ref;nom;mail\n\"unterminated\n")
	f.Add("a,b,c\n1,2,3")
	f.Add("ref;nom;mail\nR1;Un;un@exemple.fr\nR1;Deux;deux@exemple.fr\n")
	f.Fuzz(func(t *testing.T, s string) {
		lines, rep, err := parsePayers(decodeText([]byte(s)))
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || len(lines) != 0 {
				t.Fatalf("structural error %v with %d lines", err, len(lines))
			}
			return
		}
		refs, emails := map[string]bool{}, map[string]bool{}
		for _, l := range lines {
			if l.Ref == "" || l.Name == "" || !ValidEmail(l.Email) || refs[l.Ref] || emails[l.Email] {
				t.Fatalf("invalid line accepted: %+v", l)
			}
			refs[l.Ref], emails[l.Email] = true, true
		}
		for _, r := range rep.Rejected {
			if r.Line < 2 || r.Reason == "" {
				t.Fatalf("bad rejection %+v", r)
			}
		}
	})
}
