package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// importsPerPage is the page size of the history of imports.
const importsPerPage = 25

// importKinds name the kinds of import in URLs (?type=, the upload's path)
// and in French.
var importKinds = []struct {
	Slug  string
	Kind  imports.Kind
	Label string
}{
	{"redevables", imports.KindPayers, "Redevables"},
	{"factures", imports.KindInvoices, "Factures"},
}

func importKindBySlug(slug string) (imports.Kind, bool) {
	for _, k := range importKinds {
		if k.Slug == slug {
			return k.Kind, true
		}
	}
	return "", false
}

func importKindLabel(k imports.Kind) string {
	for _, x := range importKinds {
		if x.Kind == k {
			return x.Label
		}
	}
	return string(k)
}

// importStatusLabels name the batch statuses in French.
var importStatusLabels = []option{
	{string(imports.StatusQueued), "En attente"},
	{string(imports.StatusRunning), "En cours"},
	{string(imports.StatusImported), "Importé"},
	{string(imports.StatusRejected), "Refusé"},
	{string(imports.StatusDuplicate), "Déjà importé"},
	{string(imports.StatusFailed), "Échec"},
}

func importStatusLabel(s imports.Status) string {
	for _, o := range importStatusLabels {
		if o.Value == string(s) {
			return o.Label
		}
	}
	return string(s)
}

// importStageLabels say what the job is doing, beside the progress bar.
var importStageLabels = map[string]string{
	imports.StageQueued:    "En attente de traitement",
	imports.StageReading:   "Lecture du fichier",
	imports.StageChecking:  "Vérification des lignes",
	imports.StagePDFs:      "Vérification des PDF",
	imports.StageUploading: "Enregistrement des PDF",
	imports.StageApplying:  "Enregistrement des données",
	imports.StageDone:      "Terminé",
}

// importUploaderLabel names who uploaded a batch.
func importUploaderLabel(kind imports.ActorKind, name string) string {
	switch kind {
	case imports.ActorStaff:
		if name != "" {
			return name
		}
		return "Agent"
	case imports.ActorAPIKey:
		if name != "" {
			return "Clé d'API « " + name + " »"
		}
		return "Clé d'API"
	case imports.ActorCLI:
		return "Ligne de commande"
	}
	return "Système"
}

// importRow is a batch as the history shows it.
type importRow struct {
	imports.HistoryRow
	KindLabel, StatusLabel, Uploader, Size string
}

type importsData struct {
	// The upload form: its kind (?type=) and the size limit of that kind.
	Upload      string // "redevables" or "factures"
	Kinds       []option
	UploadLimit string
	// The history, with its filters.
	Rows     []importRow
	Total    int
	Pager    pager
	Columns  []sortColumn
	Contents string // filter: redevables, factures or ""
	Status   string
	Statuses []option
}

// adminImports is "Imports": the upload form of a payers file or of an
// invoices file with its PDFs (?type=redevables|factures chooses), and the
// history of the commune's imports.
func (s *Server) adminImports(c *gin.Context) {
	s.renderImports(c, http.StatusOK, c.Query("type"), "")
}

// renderImports shows the page, with problem (an upload refused) tied to
// the file field.
func (s *Server) renderImports(c *gin.Context, status int, upload, problem string) {
	t := tenant.FromContext(c.Request.Context())
	if _, ok := importKindBySlug(upload); !ok {
		upload = "redevables"
	}
	l := readList(c, imports.HistorySorts(), imports.HistoryDefaultSort)
	d := importsData{Upload: upload, Contents: l.Filter("contenu"), Status: l.Filter("statut"), Statuses: importStatusLabels}
	for _, k := range importKinds {
		d.Kinds = append(d.Kinds, option{k.Slug, k.Label})
	}
	d.UploadLimit = sizeLabel(apiImportPayersBody)
	if upload == "factures" {
		d.UploadLimit = sizeLabel(apiImportInvoicesBody) + " pour le fichier et l'archive des PDF ensemble"
	}
	q := imports.HistoryQuery{Sort: l.Sort, Page: l.Page, PerPage: importsPerPage}
	if k, ok := importKindBySlug(d.Contents); ok {
		q.Kind = k
	} else {
		d.Contents = ""
	}
	for _, o := range importStatusLabels {
		if o.Value == d.Status {
			q.Status = imports.Status(o.Value)
		}
	}
	if q.Status == "" {
		d.Status = ""
	}
	ctx := c.Request.Context()
	rows, total, err := s.Imports.History(ctx, t.ID, q)
	if last := lastPage(total, importsPerPage); err == nil && l.Page > last {
		q.Page, l.Page = last, last
		rows, total, err = s.Imports.History(ctx, t.ID, q)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	for _, r := range rows {
		d.Rows = append(d.Rows, importRow{HistoryRow: r, KindLabel: importKindLabel(r.Kind),
			StatusLabel: importStatusLabel(r.Status), Uploader: importUploaderLabel(r.ActorKind, r.UploaderName),
			Size: sizeLabel(r.CSVSize + r.ZipSize)})
	}
	d.Total, d.Pager = total, l.Pager(total, importsPerPage)
	d.Columns = []sortColumn{l.Column("Reçu le", "created"), {Label: "Contenu"}, {Label: "Fichier"}, l.NumColumn("Taille", "size"),
		{Label: "Empreinte SHA-256"}, {Label: "Envoyé par"}, {Label: "État"}, l.NumColumn("Lignes", "lines"),
		{Label: "Ajoutées", Num: true}, {Label: "Modifiées", Num: true}, {Label: "Refusées", Num: true}}
	p := s.staffPage(c, "imports", "Imports", d)
	if problem != "" {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: problem, Fields: []string{"csv"}})
	}
	s.render(c, status, "admin/imports.html", p)
}
