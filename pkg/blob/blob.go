// Package blob stores immutable objects (the invoices' PDFs) in any
// S3-compatible store through aws-sdk-go-v2. Keys are never overwritten and
// every read is checked against the SHA-256 recorded at upload.
package blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"portail/pkg/config"
)

var (
	// ErrNotFound is returned when the key does not exist.
	ErrNotFound = errors.New("blob: object not found")
	// ErrChecksumMismatch is returned when bytes do not match their SHA-256.
	ErrChecksumMismatch = errors.New("blob: sha256 mismatch")
	// ErrExists is returned by Put when the key is already taken.
	ErrExists = errors.New("blob: object already exists")
	// ErrUnavailable is returned when the store cannot be reached or
	// answers with a server error, after the SDK's own retries: the same
	// request may succeed later.
	ErrUnavailable = errors.New("blob: store unavailable")
)

// metaSHA256 is the user-metadata key (x-amz-meta-sha256) holding the hex digest.
const metaSHA256 = "sha256"

// maxPresignTTL is SigV4's limit for presigned URLs.
const maxPresignTTL = 7 * 24 * time.Hour

// Store is a bucket of an S3-compatible object store.
type Store struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	region  string
}

// New builds a client for c. It does not contact the store (ctx is for
// future use): call EnsureBucket or SelfCheck for that.
func New(ctx context.Context, c config.S3) (*Store, error) {
	if c.Bucket == "" {
		return nil, errors.New("blob: empty bucket name")
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, errors.New("blob: access key and secret key are required")
	}
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	// The SDK's default (when_supported) adds CRC32 checksums, sent as
	// aws-chunked trailers over HTTPS, that some S3-compatible stores reject.
	reqMode, respMode := aws.RequestChecksumCalculationWhenRequired, aws.ResponseChecksumValidationWhenRequired
	switch c.ChecksumMode {
	case "", "when_required":
	case "when_supported":
		reqMode, respMode = aws.RequestChecksumCalculationWhenSupported, aws.ResponseChecksumValidationWhenSupported
	default:
		return nil, fmt.Errorf("blob: checksum mode must be when_required or when_supported, got %q", c.ChecksumMode)
	}
	opts := s3.Options{
		Region:                     region,
		Credentials:                credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, ""),
		UsePathStyle:               c.PathStyle,
		RequestChecksumCalculation: reqMode,
		ResponseChecksumValidation: respMode,
		// We check SHA-256 ourselves: no warning when a store sends no CRC.
		DisableLogOutputChecksumValidationSkipped: true,
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("blob: endpoint must be an http(s) URL, got %q", c.Endpoint)
		}
		opts.BaseEndpoint = aws.String(strings.TrimRight(c.Endpoint, "/"))
	}
	client := s3.New(opts)
	return &Store{
		client:  client,
		presign: s3.NewPresignClient(client),
		bucket:  c.Bucket,
		region:  region,
	}, nil
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// EnsureBucket creates the bucket unless it exists already.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("blob: head bucket %s: %w", s.bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	// AWS rejects an explicit us-east-1 constraint and requires it elsewhere.
	if s.region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	_, err = s.client.CreateBucket(ctx, in)
	if err != nil && !hasCode(err, "BucketAlreadyOwnedByYou", "BucketAlreadyExists") {
		return fmt.Errorf("blob: create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Put stores size bytes of body, read from its start, under key, which must
// not exist yet. The body is read once first to check it against sha256hex, so a caller's bug
// cannot store bytes under a wrong digest; the store then checks the upload
// with Content-MD5, which every S3 implementation supports whatever the
// checksum mode.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, sha256hex string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	want, err := parseSHA256(sha256hex)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("blob: put %s: negative size", key)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("blob: put %s: rewind: %w", key, err)
	}
	sh, mh := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(sh, mh), body)
	if err != nil {
		return fmt.Errorf("blob: put %s: read body: %w", key, err)
	}
	if n != size {
		return fmt.Errorf("blob: put %s: body has %d bytes, want %d: %w", key, n, size, ErrChecksumMismatch)
	}
	if !bytes.Equal(sh.Sum(nil), want) {
		return fmt.Errorf("blob: put %s: %w", key, ErrChecksumMismatch)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("blob: put %s: rewind: %w", key, err)
	}

	// HeadObject catches existing keys on stores that ignore If-None-Match;
	// If-None-Match closes the race where the store honours it.
	_, err = s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	switch {
	case err == nil:
		return fmt.Errorf("blob: put %s: %w", key, ErrExists)
	case isNotFound(err):
	case httpStatus(err) == http.StatusForbidden:
		// AWS answers 403 for a missing key when the credentials may not
		// list the bucket: leave the decision to If-None-Match.
	default:
		return fmt.Errorf("blob: put %s: head: %w", key, err)
	}

	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(mh.Sum(nil))),
		ContentType:   aws.String(contentType(key)),
		Metadata:      map[string]string{metaSHA256: hex.EncodeToString(want)},
		IfNoneMatch:   aws.String("*"),
	}
	_, err = s.client.PutObject(ctx, in)
	if err != nil && hasCode(err, "NotImplemented") {
		// Conditional writes are recent: fall back on the HeadObject check.
		if _, serr := body.Seek(0, io.SeekStart); serr != nil {
			return fmt.Errorf("blob: put %s: rewind: %w", key, serr)
		}
		in.IfNoneMatch = nil
		_, err = s.client.PutObject(ctx, in)
	}
	if err != nil {
		if hasCode(err, "PreconditionFailed", "ConditionalRequestConflict") ||
			httpStatus(err) == http.StatusPreconditionFailed {
			return fmt.Errorf("blob: put %s: %w", key, ErrExists)
		}
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	return nil
}

// Get opens key for reading. The reader checks the bytes against
// wantSHA256 (or, when empty, the digest recorded at upload) while
// streaming: the Read that would hand over the last bytes of a mismatching
// object returns ErrChecksumMismatch instead, so a handler that copies it to
// a client can abort and the client never receives a complete wrong file.
// The size is -1 when the store does not say it (S3 always does); the
// mismatch is then reported at EOF only.
func (s *Store) Get(ctx context.Context, key string, wantSHA256 string) (io.ReadCloser, int64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	var want []byte
	if wantSHA256 != "" {
		w, err := parseSHA256(wantSHA256)
		if err != nil {
			return nil, 0, err
		}
		want = w
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return nil, 0, fmt.Errorf("blob: get %s: %w", key, ErrNotFound)
		}
		if isUnavailable(err) {
			return nil, 0, fmt.Errorf("blob: get %s: %w: %w", key, ErrUnavailable, err)
		}
		return nil, 0, fmt.Errorf("blob: get %s: %w", key, err)
	}
	stored := out.Metadata[metaSHA256]
	if want == nil {
		w, perr := parseSHA256(stored)
		if perr != nil {
			out.Body.Close()
			return nil, 0, fmt.Errorf("blob: get %s: no sha256 to check against: %w", key, perr)
		}
		want = w
	} else if stored != "" && !strings.EqualFold(stored, hex.EncodeToString(want)) {
		// The object was stored for other bytes: fail before streaming any.
		out.Body.Close()
		return nil, 0, fmt.Errorf("blob: get %s: recorded digest differs: %w", key, ErrChecksumMismatch)
	}
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	return &verifyingReader{key: key, body: out.Body, h: sha256.New(), want: want, size: size}, size, nil
}

// verifyingReader hashes what it passes on and withholds the final bytes
// when the digest does not match.
type verifyingReader struct {
	key  string
	body io.ReadCloser
	h    hash.Hash
	want []byte
	size int64 // -1 when unknown
	n    int64
	err  error // sticky
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.size >= 0 && r.n == r.size {
		// Everything was checked already; only confirm the end.
		if r.size == 0 && !r.match() {
			return 0, r.fail(ErrChecksumMismatch)
		}
		var one [1]byte
		m, err := r.body.Read(one[:])
		if m > 0 {
			return 0, r.fail(fmt.Errorf("%w: longer than %d bytes", ErrChecksumMismatch, r.size))
		}
		if err == nil || err == io.EOF {
			r.err = io.EOF
			return 0, io.EOF
		}
		return 0, r.fail(r.mapErr(err))
	}
	m, err := r.body.Read(p)
	r.h.Write(p[:m])
	r.n += int64(m)
	if r.size >= 0 {
		if r.n > r.size {
			return 0, r.fail(fmt.Errorf("%w: longer than %d bytes", ErrChecksumMismatch, r.size))
		}
		if r.n == r.size && !r.match() {
			return 0, r.fail(ErrChecksumMismatch)
		}
		if err == io.EOF && r.n < r.size {
			return m, r.fail(io.ErrUnexpectedEOF)
		}
	} else if err == io.EOF && !r.match() {
		return 0, r.fail(ErrChecksumMismatch)
	}
	if err != nil && err != io.EOF {
		return m, r.fail(r.mapErr(err))
	}
	if err == io.EOF {
		r.err = io.EOF
	}
	return m, err
}

func (r *verifyingReader) match() bool { return bytes.Equal(r.h.Sum(nil), r.want) }

func (r *verifyingReader) fail(err error) error {
	r.err = fmt.Errorf("blob: get %s: %w", r.key, err)
	return r.err
}

// mapErr turns the SDK's own checksum failure (when_supported mode) into ours.
func (r *verifyingReader) mapErr(err error) error {
	if strings.Contains(err.Error(), "checksum did not match") {
		return fmt.Errorf("%w: %v", ErrChecksumMismatch, err)
	}
	return err
}

func (r *verifyingReader) Close() error { return r.body.Close() }

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// PresignGet returns a URL that downloads key for ttl, offered to the
// browser as filename. It does not check that the key exists.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration, filename string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > maxPresignTTL {
		return "", fmt.Errorf("blob: presign %s: ttl %v out of (0, %v]", key, ttl, maxPresignTTL)
	}
	if filename == "" {
		filename = path.Base(key)
	}
	in := &s3.GetObjectInput{
		Bucket:                     aws.String(s.bucket),
		Key:                        aws.String(key),
		ResponseContentDisposition: aws.String(contentDisposition(filename)),
		ResponseContentType:        aws.String(contentType(filename)),
	}
	req, err := s.presign.PresignGetObject(ctx, in, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("blob: presign %s: %w", key, err)
	}
	return req.URL, nil
}

// List returns every key under prefix, in the store's order (lexical on S3).
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	keys := []string{}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("blob: list %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			if o.Key != nil {
				keys = append(keys, *o.Key)
			}
		}
	}
	return keys, nil
}

// SelfCheckPrefix is where SelfCheck writes its probe objects; an orphan
// sweeper should leave it alone.
const SelfCheckPrefix = "_selfcheck/"

// SelfCheck proves the store works end to end: it writes a small object
// under SelfCheckPrefix, reads it back verified, and deletes it.
func (s *Store) SelfCheck(ctx context.Context) error {
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("blob: selfcheck: %w", err)
	}
	key := SelfCheckPrefix + hex.EncodeToString(rnd[:])
	body := []byte("portail selfcheck " + time.Now().UTC().Format(time.RFC3339Nano))
	sum := sha256.Sum256(body)
	sumHex := hex.EncodeToString(sum[:])
	if err := s.Put(ctx, key, bytes.NewReader(body), int64(len(body)), sumHex); err != nil {
		return fmt.Errorf("blob: selfcheck: %w", err)
	}
	// Clean up even when the read fails, with a context of its own so a
	// cancelled check leaves no probe behind.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = s.Delete(dctx, key)
	}()
	rc, _, err := s.Get(ctx, key, sumHex)
	if err != nil {
		return fmt.Errorf("blob: selfcheck: %w", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("blob: selfcheck: %w", err)
	}
	if !bytes.Equal(got, body) {
		return fmt.Errorf("blob: selfcheck: read back %d bytes, wrote %d", len(got), len(body))
	}
	if err := s.Delete(ctx, key); err != nil {
		return fmt.Errorf("blob: selfcheck: %w", err)
	}
	return nil
}

// checkKey refuses keys that S3 stores differ on or that look like paths
// escaping a directory on file-backed stores.
func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("blob: empty key")
	case len(key) > 1024:
		return errors.New("blob: key longer than 1024 bytes")
	case !utf8.ValidString(key):
		return fmt.Errorf("blob: key %q is not UTF-8", key)
	case strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/"):
		return fmt.Errorf("blob: key %q starts or ends with a slash", key)
	case strings.ContainsRune(key, '\\'):
		return fmt.Errorf("blob: key %q contains a backslash", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("blob: key %q has an empty, . or .. segment", key)
		}
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("blob: key %q contains a control character", key)
		}
	}
	return nil
}

func parseSHA256(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("blob: %q is not a hex SHA-256", s)
	}
	return b, nil
}

func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ext == ".pdf" {
		return "application/pdf" // mime's table depends on the machine
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// contentDisposition offers filename for download, with an ASCII fallback
// for old clients and the exact UTF-8 name per RFC 6266 / RFC 5987.
func contentDisposition(filename string) string {
	var ascii strings.Builder
	for _, r := range filename {
		switch {
		case r == '"' || r == '\\' || r == '/' || r < 0x20 || r == 0x7f:
			ascii.WriteByte('_')
		case r < 0x80:
			ascii.WriteRune(r)
		default:
			ascii.WriteByte('_')
		}
	}
	cd := `attachment; filename="` + ascii.String() + `"`
	if ascii.String() != filename {
		cd += "; filename*=UTF-8''" + rfc5987(filename)
	}
	return cd
}

func rfc5987(s string) string {
	const attrChar = "!#$&+-.^_`|~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(attrChar, c) >= 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	if hasCode(err, "NoSuchBucket") {
		return false // a configuration error, not a missing object
	}
	return hasCode(err, "NoSuchKey", "NotFound") || httpStatus(err) == http.StatusNotFound
}

// isUnavailable tells a store that is down (no connection, reset, timeout)
// or failing (5xx) from an error about the request itself.
func isUnavailable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || httpStatus(err) >= http.StatusInternalServerError
}

func hasCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
