package imports

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

func (f *fixture) emailOf(t *testing.T, ref string) (email, name, status string) {
	t.Helper()
	var row struct {
		Email  string `db:"email"`
		Name   string `db:"display_name"`
		Status string `db:"status"`
	}
	if err := f.d.Get(&row, `SELECT email, display_name, status FROM accounts WHERE tenant_id = $1 AND external_ref = $2`, f.t.ID, ref); err != nil {
		t.Fatalf("account %s: %v", ref, err)
	}
	return row.Email, row.Name, row.Status
}

func TestImportPayersUTF8BOMAndIdempotent(t *testing.T) {
	f := newFixture(t)
	other := createTenant(t, f.d, "autre")
	file := "\ufeffRéférence;Nom affiché;Adresse mail;Autre colonne\n" +
		"R1;Test SISTEC560;Demo@Demo.fr;x\n" +
		"R2;  Élodie   Brûlé ;elodie@exemple.fr;y\n" +
		";;;\n" +
		"R3;Sans mail;;z\n"
	rep := f.payers(t, file)
	if rep.Status != StatusImported || rep.Inserted != 2 || rep.Updated != 0 || rep.Unchanged != 0 || rep.Rejected != 1 ||
		len(rep.Errors) != 1 || rep.Errors[0].Line != 5 || rep.Errors[0].Reason != "Adresse mail manquante." || rep.Errors[0].Number != "R3" {
		t.Fatalf("first import %+v", rep)
	}
	if email, name, status := f.emailOf(t, "R1"); email != "demo@demo.fr" || name != "Test SISTEC560" || status != "pending" {
		t.Fatalf("R1: %s %s %s", email, name, status)
	}
	if _, name, _ := f.emailOf(t, "R2"); name != "Élodie Brûlé" {
		t.Fatalf("name %q", name)
	}
	// The same file again: recognised, nothing changes.
	again := f.payers(t, file)
	if again.Status != StatusDuplicate || again.DuplicateOf != rep.BatchID {
		t.Fatalf("same file %+v", again)
	}
	// The same payers in another file: unchanged.
	rep = f.payers(t, strings.ReplaceAll(file, "\n", "\r\n"))
	if rep.Status != StatusImported || rep.Inserted != 0 || rep.Updated != 0 || rep.Unchanged != 2 || rep.Rejected != 1 {
		t.Fatalf("second import %+v", rep)
	}
	// Other tenants are untouched.
	if n := count(t, f.d, `SELECT count(*) FROM accounts WHERE tenant_id = $1`, other.ID); n != 0 {
		t.Fatal("rows in another tenant")
	}
	if n := count(t, f.d, `SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'payers.imported'`, f.t.ID); n != 2 {
		t.Fatalf("%d audit entries", n)
	}
}

func TestImportPayersWindows1252(t *testing.T) {
	f := newFixture(t)
	cp, err := charmap.Windows1252.NewEncoder().String("reference;nom;email\r\nR1;Hervé Lœuillet;herve@exemple.fr\r\n")
	if err != nil || !strings.Contains(cp, "\xe9") {
		t.Fatal("not Windows-1252")
	}
	rep := f.payers(t, cp)
	if rep.Inserted != 1 || rep.Encoding != EncodingWindows1252 {
		t.Fatalf("%+v", rep)
	}
	if _, name, _ := f.emailOf(t, "R1"); name != "Hervé Lœuillet" {
		t.Fatalf("decoded name %q", name)
	}
}

func TestImportPayersRejectsLines(t *testing.T) {
	f := newFixture(t)
	createAccount(t, f.d, f.t.ID, "OLD", "Ancien", "pris@exemple.fr", "pending")
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
	rep := f.payers(t, file)
	wantLines := []int{3, 4, 5, 6, 7, 8, 9}
	if rep.Inserted != 3 || rep.Rejected != len(wantLines) || len(rep.Errors) != len(wantLines) {
		t.Fatalf("%+v", rep)
	}
	for i, l := range wantLines {
		if rep.Errors[i].Line != l || rep.Errors[i].Reason == "" {
			t.Fatalf("rejected[%d] = %+v, want line %d (all %+v)", i, rep.Errors[i], l, rep.Errors)
		}
	}
	for i, want := range []string{"Adresse mail invalide", "Référence manquante", "Référence « R1 » déjà présente ligne 2",
		"Adresse mail « un@exemple.fr » déjà présente ligne 2", "déjà utilisée par un autre redevable (référence « OLD »)",
		"Nombre de colonnes insuffisant", "Nom manquant"} {
		if !strings.Contains(rep.Errors[i].Reason, want) {
			t.Errorf("line %d: %q, want %q", rep.Errors[i].Line, rep.Errors[i].Reason, want)
		}
	}
	if _, name, _ := f.emailOf(t, "R10"); name != `Dupont "Jo"` {
		t.Fatalf("quoted name %q", name)
	}
}

func TestImportPayersRefusedFilesWriteNothing(t *testing.T) {
	f := newFixture(t)
	for name, c := range map[string]struct{ file, want string }{
		"empty":          {"", "Fichier vide"},
		"header only":    {"reference;nom;email\n", "aucun redevable"},
		"missing column": {"reference;nom\nR1;Un\n", "Colonne(s) manquante(s) dans la ligne d'en-tête : email."},
		"commas":         {"reference,nom,email\nR1,Un,un@exemple.fr\n", "points-virgules"},
		"bad quoting":    {"reference;nom;email\nR1;Un;un@exemple.fr\nR2;\"Deux;deux@exemple.fr\nR3;Trois;trois@exemple.fr\n", "Ligne 3 : guillemet non fermé"},
		"duplicate col":  {"reference;nom;email;mail\nR1;Un;un@exemple.fr;x@y.fr\n", "apparaît deux fois"},
	} {
		rep := f.payers(t, c.file)
		if rep.Status != StatusRejected || rep.Rejected != 1 || len(rep.Errors) != 1 || rep.Errors[0].Line != 0 ||
			!strings.Contains(rep.Errors[0].Reason, c.want) {
			t.Errorf("%s: %+v", name, rep)
		}
	}
	if n := count(t, f.d, `SELECT count(*) FROM accounts`); n != 0 {
		t.Fatalf("%d accounts written", n)
	}
}

// A file whose every line is refused imported nothing, and its batch says
// "rejected", not "imported" with zero lines (probe F9).
func TestImportPayersAllLinesRejectedIsRejected(t *testing.T) {
	f := newFixture(t)
	rep := f.payers(t, "reference;nom;email\nR1;Un;pas-une-adresse\n;Deux;deux@exemple.fr\n")
	if rep.Status != StatusRejected || rep.Inserted != 0 || rep.Rejected != 2 || len(rep.Errors) != 2 {
		t.Fatalf("%+v", rep)
	}
	if n := count(t, f.d, `SELECT count(*) FROM accounts`); n != 0 {
		t.Fatalf("%d accounts written", n)
	}
	if rep := f.payers(t, "reference;nom;email\nR1;Un;un@exemple.fr\nR2;Deux;pas-une-adresse\n"); rep.Status != StatusImported || rep.Inserted != 1 {
		t.Fatalf("partly valid file: %+v", rep)
	}
}

func TestImportPayersUpdatesAndSwaps(t *testing.T) {
	f := newFixture(t)
	f.payers(t, "reference;nom;email\nA;Alice;a@exemple.fr\nB;Bob;b@exemple.fr\nC;Carole;c@exemple.fr\n")
	createAccount(t, f.d, f.t.ID, "D", "Denis", "d@exemple.fr", "active")
	// A and B swap addresses; C is renamed; D (activated) keeps its login.
	rep := f.payers(t, "reference;nom;email\nA;Alice;b@exemple.fr\nB;Bob;a@exemple.fr\nC;Carole Martin;c@exemple.fr\nD;Denis;autre@exemple.fr\n")
	if rep.Updated != 3 || rep.Unchanged != 1 || rep.Rejected != 0 || rep.NoteCount != 1 || len(rep.Notes) != 1 || rep.Notes[0].Line != 5 ||
		!strings.Contains(rep.Notes[0].Reason, "l'adresse de connexion « d@exemple.fr » est conservée") {
		t.Fatalf("%+v", rep)
	}
	for ref, want := range map[string]string{"A": "b@exemple.fr", "B": "a@exemple.fr", "C": "c@exemple.fr", "D": "d@exemple.fr"} {
		if got, _, _ := f.emailOf(t, ref); got != want {
			t.Errorf("%s: %s, want %s", ref, got, want)
		}
	}
	if _, _, status := f.emailOf(t, "D"); status != "active" {
		t.Fatal("active account changed")
	}
	// A new payer cannot take the activated account's address.
	rep = f.payers(t, "reference;nom;email\nE;Eve;d@exemple.fr\n")
	if rep.Rejected != 1 || !strings.Contains(rep.Errors[0].Reason, "référence « D »") {
		t.Fatalf("%+v", rep)
	}
	// A swap with an activated account, which keeps its address, is
	// refused; then B cannot take A's address, which A keeps: rejections
	// run to a fixed point.
	rep = f.payers(t, "reference;nom;email\nA;Alice;d@exemple.fr\nD;Denis;a@exemple.fr\nB;Bob;b@exemple.fr\n")
	if rep.Rejected != 2 || rep.Errors[0].Line != 2 || rep.Errors[1].Line != 4 || rep.Unchanged != 1 || rep.NoteCount != 1 ||
		!strings.Contains(rep.Errors[1].Reason, "« b@exemple.fr » déjà utilisée par un autre redevable (référence « A »)") {
		t.Fatalf("swap with an activated account: %+v", rep)
	}
}

func TestImportPayersManyLines(t *testing.T) {
	f := newFixture(t)
	var b strings.Builder
	b.WriteString("reference;nom;email\n")
	for i := range 12000 {
		fmt.Fprintf(&b, "R%05d;Redevable %d;r%d@exemple.fr\n", i, i, i)
	}
	if rep := f.payers(t, b.String()); rep.Inserted != 12000 {
		t.Fatalf("%+v", rep.Inserted)
	}
	if rep := f.payers(t, strings.Replace(b.String(), "reference", "Référence", 1)); rep.Unchanged != 12000 {
		t.Fatalf("%+v", rep.Unchanged)
	}
}

// The API's writes of one payer go through the same code; ten at once for
// the same new reference create one account, and report it created once.
func TestApplyPayerConcurrently(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	reports := make([]Report, 10)
	errs := make([]error, 10)
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = f.s.ApplyPayer(f.ctx, f.t.ID, Actor{Kind: ActorAPIKey, ID: 7},
				PayerLine{Ref: "RACE1", Name: "Course", Email: "course@exemple.fr"})
		}()
	}
	wg.Wait()
	created, unchanged := 0, 0
	for i, r := range reports {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		created += r.Inserted
		unchanged += r.Unchanged
	}
	if created != 1 || unchanged != 9 || count(t, f.d, `SELECT count(*) FROM accounts WHERE external_ref = 'RACE1'`) != 1 {
		t.Fatalf("created %d, unchanged %d", created, unchanged)
	}
	rep, err := f.s.ApplyPayer(f.ctx, f.t.ID, Actor{Kind: ActorAPIKey, ID: 7}, PayerLine{Ref: "RACE2", Name: "X", Email: "pas-une-adresse"})
	if err != nil || rep.Status != StatusRejected || rep.Rejected != 1 || !strings.Contains(rep.Errors[0].Reason, "Adresse mail invalide") ||
		rep.Uploader != (Actor{Kind: ActorAPIKey, ID: 7}) {
		t.Fatalf("bad address: %v %+v", err, rep)
	}
}
