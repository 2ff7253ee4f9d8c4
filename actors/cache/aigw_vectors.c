/*  aigw_vectors: the word vectors file, its loader and its importer (see
    the header for the layout and why int8).

    The importer reads the 300 MB JSON with a streaming reader of its own
    rather than Jansson: a JSON tree of 35 million numbers would take some
    2 GB, and the file's shape is fixed, so a reader that expects exactly
    that shape is both smaller and stricter (unknown keys are refused). */
#include "aigw_vectors.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC       "AIGWVEC"
#define S_VERSION     1
#define S_HEADER_SIZE 32
//  Largest magnitude of a vector element (the importer refuses larger),
//  so an int8 element times its scale stays finite, and sums of them too.
#define S_ELEMENT_MAX 1e30
//  Longest number the importer accepts, in characters.
#define S_NUMBER_MAX 64
//  The importer's read buffer.
#define S_READ_CHUNK (1 << 20)
//  Power iterations for the common component; it converges in far fewer.
#define S_POWER_ITERATIONS 300
//  Euler-Mascheroni, for the harmonic number H(n) ~ ln n + gamma.
#define S_EULER_GAMMA 0.5772156649

struct _aigw_vectors_t {
    const unsigned char *data;  //  the file's bytes
    size_t size;                //  their length
    bool mapped;                //  DATA is our mmap (unmap on destroy)
    uint32_t dim;               //  dimensions
    uint32_t count;             //  words
    uint32_t kind;              //  AIGW_VECTORS_F32 or AIGW_VECTORS_I8
    float sif_a;                //  SIF a used for the common component
    double harmonic;            //  H(count), for the Zipf estimate
    const float *common;        //  common component, dim floats
    const float *scale;         //  per-vector scale (int8), or NULL
    const void *vectors;        //  count x dim elements
    const uint32_t *offsets;    //  count + 1 pool offsets by rank
    const uint32_t *sorted;     //  ranks in word order
    const char *pool;           //  word bytes
};

static void
s_err (char *err, size_t err_size, const char *format, ...)
{
    if (!err || !err_size)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
}

static uint32_t
s_u32 (const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static size_t
s_align4 (size_t n)
{
    return (n + 3) & ~(size_t) 3;
}

//  Byte order of two words, shorter first on a common prefix.
static int
s_word_cmp (const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp (a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static bool
s_streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

static double
s_harmonic (size_t n)
{
    return log ((double) n) + S_EULER_GAMMA + 1.0 / (2.0 * (double) n);
}

//  --------------------------------------------------------------------------
//  Loader

aigw_vectors_t *
aigw_vectors_new_from (const void *data, size_t size, char *err, size_t err_size)
{
    //  The layout is little-endian; so is every host the gateway builds on.
    const uint16_t probe = 1;
    if (*(const unsigned char *) &probe != 1) {
        s_err (err, err_size, "vectors: big-endian hosts are not supported");
        return NULL;
    }
    const unsigned char *p = data;
    if (size < S_HEADER_SIZE || memcmp (p, S_MAGIC, 8) != 0) {
        s_err (err, err_size, "vectors: not an aigw vectors file (bad magic)");
        return NULL;
    }
    uint32_t version = s_u32 (p + 8), dim = s_u32 (p + 12), count = s_u32 (p + 16);
    uint32_t kind = s_u32 (p + 20), pool_bytes = s_u32 (p + 24);
    float sif_a;
    memcpy (&sif_a, p + 28, sizeof sif_a);
    if (version != S_VERSION) {
        s_err (err, err_size, "vectors: version %u, this build reads %d", version, S_VERSION);
        return NULL;
    }
    if (dim < 1 || dim > AIGW_VECTORS_DIM_MAX || count < 1 || count > AIGW_VECTORS_COUNT_MAX
        || (kind != AIGW_VECTORS_F32 && kind != AIGW_VECTORS_I8) || !isfinite (sif_a)
        || sif_a <= 0) {
        s_err (err, err_size, "vectors: bad header (dim %u, count %u, kind %u)", dim, count, kind);
        return NULL;
    }
    //  Every section's size follows from the header: the file must be that
    //  long exactly (all in size_t: dim and count are capped above).
    size_t elem = kind == AIGW_VECTORS_F32 ? 4 : 1;
    size_t off_common = S_HEADER_SIZE;
    size_t off_scale = off_common + (size_t) dim * 4;
    size_t off_vectors = off_scale + (kind == AIGW_VECTORS_I8 ? (size_t) count * 4 : 0);
    size_t off_offsets = off_vectors + s_align4 ((size_t) count * dim * elem);
    size_t off_sorted = off_offsets + ((size_t) count + 1) * 4;
    size_t off_pool = off_sorted + (size_t) count * 4;
    if (size != off_pool + pool_bytes) {
        s_err (err, err_size, "vectors: file is %zu bytes, header says %zu (truncated?)", size,
               off_pool + (size_t) pool_bytes);
        return NULL;
    }
    aigw_vectors_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_err (err, err_size, "vectors: out of memory");
        return NULL;
    }
    self->data = p;
    self->size = size;
    self->dim = dim;
    self->count = count;
    self->kind = kind;
    self->sif_a = sif_a;
    self->harmonic = s_harmonic (count);
    self->common = (const float *) (p + off_common);
    self->scale = kind == AIGW_VECTORS_I8 ? (const float *) (p + off_scale) : NULL;
    self->vectors = p + off_vectors;
    self->offsets = (const uint32_t *) (p + off_offsets);
    self->sorted = (const uint32_t *) (p + off_sorted);
    self->pool = (const char *) (p + off_pool);

    //  Numbers: finite, the common component a unit vector.
    const char *why = NULL;
    double norm = 0;
    for (size_t d = 0; d < dim && !why; d++) {
        if (!isfinite (self->common[d]))
            why = "common component is not finite";
        norm += (double) self->common[d] * self->common[d];
    }
    if (!why && fabs (norm - 1.0) > 1e-3)
        why = "common component is not a unit vector";
    for (size_t r = 0; self->scale && r < count && !why; r++)
        if (!isfinite (self->scale[r]) || self->scale[r] < 0
            || self->scale[r] > S_ELEMENT_MAX / 127)
            why = "a vector's scale is not finite";
    if (kind == AIGW_VECTORS_F32) {
        const float *v = self->vectors;
        for (size_t i = 0; i < (size_t) count * dim && !why; i++)
            if (!isfinite (v[i]) || fabsf (v[i]) > S_ELEMENT_MAX)
                why = "a vector is not finite";
    }
    //  Words: offsets rise, each word 1..WORD_MAX bytes, and the sorted
    //  index is in strictly rising word order, which makes its ranks
    //  distinct (each < count), hence a permutation.
    if (!why && self->offsets[0] != 0)
        why = "first word offset is not 0";
    for (size_t r = 0; r < count && !why; r++) {
        uint32_t from = self->offsets[r], to = self->offsets[r + 1];
        if (to <= from || to - from > AIGW_VECTORS_WORD_MAX || to > pool_bytes)
            why = "bad word offsets";
    }
    if (!why && self->offsets[count] != pool_bytes)
        why = "word pool size does not match the offsets";
    for (size_t i = 0; i < count && !why; i++) {
        if (self->sorted[i] >= count)
            why = "sorted index out of range";
        else if (i > 0) {
            size_t alen, blen;
            const char *a = aigw_vectors_word (self, self->sorted[i - 1], &alen);
            const char *b = aigw_vectors_word (self, self->sorted[i], &blen);
            if (s_word_cmp (a, alen, b, blen) >= 0)
                why = "words are not sorted and distinct";
        }
    }
    if (why) {
        s_err (err, err_size, "vectors: %s", why);
        free (self);
        return NULL;
    }
    return self;
}

aigw_vectors_t *
aigw_vectors_open (const char *path, char *err, size_t err_size)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s_err (err, err_size, "vectors: cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size < S_HEADER_SIZE) {
        s_err (err, err_size, "vectors: %s is not a vectors file", path);
        close (fd);
        return NULL;
    }
    void *map = mmap (NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close (fd);
    if (map == MAP_FAILED) {
        s_err (err, err_size, "vectors: cannot map %s: %s", path, strerror (errno));
        return NULL;
    }
    aigw_vectors_t *self = aigw_vectors_new_from (map, (size_t) st.st_size, err, err_size);
    if (!self) {
        munmap (map, (size_t) st.st_size);
        return NULL;
    }
    self->mapped = true;
    return self;
}

void
aigw_vectors_destroy (aigw_vectors_t **self_p)
{
    assert (self_p);
    aigw_vectors_t *self = *self_p;
    if (!self)
        return;
    if (self->mapped)
        munmap ((void *) self->data, self->size);
    free (self);
    *self_p = NULL;
}

size_t
aigw_vectors_dim (const aigw_vectors_t *self)
{
    return self->dim;
}

size_t
aigw_vectors_count (const aigw_vectors_t *self)
{
    return self->count;
}

aigw_vectors_kind_t
aigw_vectors_kind (const aigw_vectors_t *self)
{
    return (aigw_vectors_kind_t) self->kind;
}

const char *
aigw_vectors_word (const aigw_vectors_t *self, size_t rank, size_t *len_p)
{
    assert (rank < self->count);
    *len_p = self->offsets[rank + 1] - self->offsets[rank];
    return self->pool + self->offsets[rank];
}

int64_t
aigw_vectors_find (const aigw_vectors_t *self, const char *word, size_t len)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2, mlen;
        const char *m = aigw_vectors_word (self, self->sorted[mid], &mlen);
        int c = s_word_cmp (word, len, m, mlen);
        if (c == 0)
            return self->sorted[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

void
aigw_vectors_get (const aigw_vectors_t *self, size_t rank, float *out)
{
    assert (rank < self->count);
    if (self->kind == AIGW_VECTORS_F32)
        memcpy (out, (const float *) self->vectors + rank * self->dim, self->dim * sizeof *out);
    else {
        const int8_t *q = (const int8_t *) self->vectors + rank * self->dim;
        float scale = self->scale[rank];
        for (size_t d = 0; d < self->dim; d++)
            out[d] = scale * q[d];
    }
}

double
aigw_vectors_prob (const aigw_vectors_t *self, size_t rank)
{
    return 1.0 / (((double) rank + 1.0) * self->harmonic);
}

double
aigw_vectors_sif_a (const aigw_vectors_t *self)
{
    return self->sif_a;
}

const float *
aigw_vectors_common (const aigw_vectors_t *self)
{
    return self->common;
}

double
aigw_vectors_similarity (const aigw_vectors_t *self, size_t rank_a, size_t rank_b)
{
    float a[AIGW_VECTORS_DIM_MAX], b[AIGW_VECTORS_DIM_MAX];
    aigw_vectors_get (self, rank_a, a);
    aigw_vectors_get (self, rank_b, b);
    double ab = 0, aa = 0, bb = 0;
    for (size_t d = 0; d < self->dim; d++) {
        ab += (double) a[d] * b[d];
        aa += (double) a[d] * a[d];
        bb += (double) b[d] * b[d];
    }
    return aa > 0 && bb > 0 ? ab / sqrt (aa * bb) : 0;
}

//  --------------------------------------------------------------------------
//  Importer: a streaming reader for exactly the wink file's shape.

typedef struct {
    FILE *file;                            //  the JSON
    unsigned char *buf;                    //  read buffer
    size_t len;                            //  bytes in BUF
    size_t pos;                            //  next byte in BUF
    size_t offset;                         //  file offset of BUF[0]
    char *err;                             //  where the first error goes
    size_t err_size;                       //  its size
    bool failed;                           //  an error was reported
    char word[AIGW_VECTORS_WORD_MAX + 8];  //  the last string read
    size_t word_len;                       //  its length
} s_reader_t;

//  One entry of "vectors" as read.
typedef struct {
    char *word;     //  key (heap)
    size_t len;     //  its length
    uint32_t rank;  //  wordIndex element
} s_entry_t;

static int
s_fail (s_reader_t *r, const char *format, ...)
{
    if (r->failed)
        return -1;
    r->failed = true;
    char what[200];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    s_err (r->err, r->err_size, "import: %s at byte %zu", what, r->offset + r->pos);
    return -1;
}

//  The next byte without taking it, or -1 at the end of the file.
static int
s_peek (s_reader_t *r)
{
    if (r->pos == r->len) {
        if (r->failed)
            return -1;
        r->offset += r->len;
        r->len = fread (r->buf, 1, S_READ_CHUNK, r->file);
        r->pos = 0;
        if (r->len == 0)
            return -1;
    }
    return r->buf[r->pos];
}

static int
s_take (s_reader_t *r)
{
    int c = s_peek (r);
    if (c >= 0)
        r->pos++;
    return c;
}

static int
s_skip_ws (s_reader_t *r)
{
    int c;
    while ((c = s_peek (r)) == ' ' || c == '\n' || c == '\r' || c == '\t')
        r->pos++;
    return c;
}

static int
s_expect (s_reader_t *r, char want)
{
    int c = s_skip_ws (r);
    if (c < 0)
        return s_fail (r, "unexpected end of file, expected '%c'", want);
    if (c != want)
        return s_fail (r, "expected '%c'", want);
    r->pos++;
    return 0;
}

static int
s_hex4 (s_reader_t *r, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = s_take (r);
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return s_fail (r, "bad \\u escape");
        v = v << 4 | (unsigned) d;
    }
    *out = v;
    return 0;
}

static int
s_put (s_reader_t *r, unsigned char c)
{
    if (r->word_len >= AIGW_VECTORS_WORD_MAX)
        return s_fail (r, "string longer than %d bytes", AIGW_VECTORS_WORD_MAX);
    r->word[r->word_len++] = (char) c;
    return 0;
}

//  Read a JSON string into r->word (UTF-8, escapes decoded).
static int
s_string (s_reader_t *r)
{
    if (s_expect (r, '"'))
        return -1;
    r->word_len = 0;
    while (true) {
        int c = s_take (r);
        if (c < 0)
            return s_fail (r, "unexpected end of file in a string");
        if (c == '"')
            break;
        if (c < 0x20)
            return s_fail (r, "control character in a string");
        if (c != '\\') {
            if (s_put (r, (unsigned char) c))
                return -1;
            continue;
        }
        c = s_take (r);
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = c > 0 ? strchr (from, c) : NULL;
        if (hit) {
            if (s_put (r, (unsigned char) to[hit - from]))
                return -1;
            continue;
        }
        if (c != 'u')
            return s_fail (r, "bad escape in a string");
        unsigned cp;
        if (s_hex4 (r, &cp))
            return -1;
        if (cp >= 0xD800 && cp < 0xDC00) {
            unsigned lo;
            if (s_take (r) != '\\' || s_take (r) != 'u' || s_hex4 (r, &lo) || lo < 0xDC00
                || lo > 0xDFFF)
                return s_fail (r, "unpaired surrogate in a string");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        else if (cp >= 0xDC00 && cp <= 0xDFFF)
            return s_fail (r, "unpaired surrogate in a string");
        if (cp == 0)
            return s_fail (r, "NUL in a string");
        int rc = 0;
        if (cp < 0x80)
            rc = s_put (r, (unsigned char) cp);
        else if (cp < 0x800)
            rc = s_put (r, (unsigned char) (0xC0 | cp >> 6))
                 || s_put (r, (unsigned char) (0x80 | (cp & 0x3F)));
        else if (cp < 0x10000)
            rc = s_put (r, (unsigned char) (0xE0 | cp >> 12))
                 || s_put (r, (unsigned char) (0x80 | (cp >> 6 & 0x3F)))
                 || s_put (r, (unsigned char) (0x80 | (cp & 0x3F)));
        else
            rc = s_put (r, (unsigned char) (0xF0 | cp >> 18))
                 || s_put (r, (unsigned char) (0x80 | (cp >> 12 & 0x3F)))
                 || s_put (r, (unsigned char) (0x80 | (cp >> 6 & 0x3F)))
                 || s_put (r, (unsigned char) (0x80 | (cp & 0x3F)));
        if (rc)
            return -1;
    }
    return 0;
}

//  Read a JSON number (strict grammar) into *OUT.
static int
s_number (s_reader_t *r, double *out)
{
    char text[S_NUMBER_MAX + 1];
    size_t n = 0;
    int c = s_skip_ws (r);
    //  -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
    int state = 0;  //  0 sign, 1 int first, 2 int more, 3 after 0, 4 frac first,
                    //  5 frac more, 6 exp sign, 7 exp first, 8 exp more
    while (true) {
        c = s_peek (r);
        int next = -1;
        bool digit = c >= '0' && c <= '9';
        switch (state) {
            case 0: next = c == '-' ? 1 : c == '0' ? 3 : digit ? 2 : -1; break;
            case 1: next = c == '0' ? 3 : digit ? 2 : -1; break;
            case 2: next = digit ? 2 : c == '.' ? 4 : (c == 'e' || c == 'E') ? 6 : -1; break;
            case 3: next = c == '.' ? 4 : (c == 'e' || c == 'E') ? 6 : -1; break;
            case 4: next = digit ? 5 : -1; break;
            case 5: next = digit ? 5 : (c == 'e' || c == 'E') ? 6 : -1; break;
            case 6: next = (c == '+' || c == '-') ? 7 : digit ? 8 : -1; break;
            case 7: next = digit ? 8 : -1; break;
            case 8: next = digit ? 8 : -1; break;
        }
        if (next < 0)
            break;
        if (n == S_NUMBER_MAX)
            return s_fail (r, "number longer than %d characters", S_NUMBER_MAX);
        text[n++] = (char) c;
        r->pos++;
        state = next;
    }
    if (state != 2 && state != 3 && state != 5 && state != 8)
        return s_fail (r, c < 0 ? "unexpected end of file in a number" : "expected a number");
    text[n] = 0;
    *out = strtod (text, NULL);
    if (!isfinite (*out))
        return s_fail (r, "number out of range");
    return 0;
}

//  A non-negative integer below LIMIT.
static int
s_index (s_reader_t *r, double limit, uint32_t *out)
{
    double v;
    if (s_number (r, &v))
        return -1;
    if (v < 0 || v >= limit || v != floor (v))
        return s_fail (r, "expected an integer below %.0f", limit);
    *out = (uint32_t) v;
    return 0;
}

//  After a value in an array or object: 1 for ',', 0 for CLOSE, -1 else.
static int
s_more (s_reader_t *r, char close)
{
    int c = s_skip_ws (r);
    if (c == ',') {
        r->pos++;
        return 1;
    }
    if (c == close) {
        r->pos++;
        return 0;
    }
    return s_fail (r, c < 0 ? "unexpected end of file" : "expected ',' or '%c'", close);
}

//  The JSON as read, before it is checked as a whole.
typedef struct {
    double dimensions, size, l2_index, word_index;  //  header numbers, -1 when absent
    char **words;                                   //  "words", by index
    size_t *word_lens;                              //  their lengths
    size_t word_count;                              //  how many
    s_entry_t *entries;                             //  "vectors" entries, file order
    float *values;                                  //  their vectors, dim each
    size_t entry_count;                             //  how many
    size_t cap;                                     //  capacity of both
} s_doc_t;

static int
s_grow (void **array, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t next = *cap ? *cap * 2 : 1024;
    while (next < need)
        next *= 2;
    void *grown = realloc (*array, next * elem);
    if (!grown)
        return -1;
    *array = grown;
    *cap = next;
    return 0;
}

static int
s_read_words (s_reader_t *r, s_doc_t *doc)
{
    if (doc->words)
        return s_fail (r, "\"words\" given twice");
    if (s_expect (r, '['))
        return -1;
    size_t cap = 0, cap2 = 0;
    if (s_skip_ws (r) == ']') {
        r->pos++;
        return 0;
    }
    do {
        if (doc->word_count >= AIGW_VECTORS_COUNT_MAX)
            return s_fail (r, "more than %d words", AIGW_VECTORS_COUNT_MAX);
        if (s_string (r))
            return -1;
        if (s_grow ((void **) &doc->words, &cap, doc->word_count + 1, sizeof *doc->words)
            || s_grow ((void **) &doc->word_lens, &cap2, doc->word_count + 1,
                       sizeof *doc->word_lens))
            return s_fail (r, "out of memory");
        char *copy = malloc (r->word_len + 1);
        if (!copy)
            return s_fail (r, "out of memory");
        memcpy (copy, r->word, r->word_len);
        copy[r->word_len] = 0;
        doc->words[doc->word_count] = copy;
        doc->word_lens[doc->word_count++] = r->word_len;
    } while (s_more (r, ']') == 1);
    return r->failed ? -1 : 0;
}

//  "vectors": { word: [dim numbers, l2 norm, word index], ... }. The
//  dimension must be known first: "dimensions" comes before it in the file.
static int
s_read_vectors (s_reader_t *r, s_doc_t *doc)
{
    if (doc->entries)
        return s_fail (r, "\"vectors\" given twice");
    if (doc->dimensions < 1 || doc->size < 1 || doc->l2_index < 0 || doc->word_index < 0)
        return s_fail (r, "\"vectors\" before \"dimensions\", \"size\", \"l2NormIndex\" "
                          "and \"wordIndex\"");
    size_t dim = (size_t) doc->dimensions;
    size_t items = dim + 2;
    if ((size_t) doc->l2_index != dim || (size_t) doc->word_index != dim + 1)
        return s_fail (r, "l2NormIndex and wordIndex must follow the vector");
    if (s_expect (r, '{'))
        return -1;
    if (s_skip_ws (r) == '}') {
        r->pos++;
        return 0;
    }
    size_t cap_values = 0;
    do {
        if (doc->entry_count >= AIGW_VECTORS_COUNT_MAX)
            return s_fail (r, "more than %d vectors", AIGW_VECTORS_COUNT_MAX);
        if (s_string (r) || s_expect (r, ':') || s_expect (r, '['))
            return -1;
        size_t e = doc->entry_count;
        if (s_grow ((void **) &doc->entries, &doc->cap, e + 1, sizeof *doc->entries)
            || s_grow ((void **) &doc->values, &cap_values, (e + 1) * dim, sizeof *doc->values))
            return s_fail (r, "out of memory");
        s_entry_t *entry = &doc->entries[e];
        entry->word = malloc (r->word_len + 1);
        if (!entry->word)
            return s_fail (r, "out of memory");
        memcpy (entry->word, r->word, r->word_len);
        entry->word[r->word_len] = 0;
        entry->len = r->word_len;
        doc->entry_count++;
        for (size_t i = 0; i < items; i++) {
            if (i > 0 && s_skip_ws (r) == ']')
                return s_fail (r, "vector of \"%s\" has %zu numbers, expected %zu", entry->word, i,
                               items);
            if (i > 0 && s_expect (r, ','))
                return -1;
            if (i == dim + 1) {
                if (s_index (r, doc->size, &entry->rank))
                    return -1;
                continue;
            }
            double v;
            if (s_number (r, &v))
                return -1;
            if (i < dim) {
                if (fabs (v) > S_ELEMENT_MAX)
                    return s_fail (r, "vector element out of range");
                doc->values[e * dim + i] = (float) v;
            }
        }
        if (s_skip_ws (r) != ']')
            return s_fail (r, "vector of \"%s\" has more than %zu numbers", entry->word, items);
        r->pos++;
    } while (s_more (r, '}') == 1);
    return r->failed ? -1 : 0;
}

static int
s_read_doc (s_reader_t *r, s_doc_t *doc)
{
    if (s_expect (r, '{'))
        return -1;
    do {
        if (s_string (r) || s_expect (r, ':'))
            return -1;
        char key[32];
        snprintf (key, sizeof key, "%.*s", (int) (r->word_len < 31 ? r->word_len : 31), r->word);
        double v;
        uint32_t u;
        if (s_streq (key, "words")) {
            if (s_read_words (r, doc))
                return -1;
        }
        else if (s_streq (key, "vectors")) {
            if (s_read_vectors (r, doc))
                return -1;
        }
        else if (s_streq (key, "unkVector")) {
            //  Zeros and -1: the vector for unknown words, unused here.
            if (s_expect (r, '['))
                return -1;
            size_t n = 0;
            do {
                if (++n > AIGW_VECTORS_DIM_MAX + 2)
                    return s_fail (r, "unkVector too long");
                if (s_number (r, &v))
                    return -1;
            } while (s_more (r, ']') == 1);
            if (r->failed)
                return -1;
        }
        else if (s_streq (key, "precision")) {
            if (s_index (r, 100, &u))
                return -1;
        }
        else if (s_streq (key, "dimensions") || s_streq (key, "size")
                 || s_streq (key, "l2NormIndex") || s_streq (key, "wordIndex")) {
            double limit
                = s_streq (key, "size") ? AIGW_VECTORS_COUNT_MAX + 1.0 : AIGW_VECTORS_DIM_MAX + 2.0;
            if (s_index (r, limit, &u))
                return -1;
            double *slot = s_streq (key, "dimensions")    ? &doc->dimensions
                           : s_streq (key, "size")        ? &doc->size
                           : s_streq (key, "l2NormIndex") ? &doc->l2_index
                                                          : &doc->word_index;
            if (*slot >= 0)
                return s_fail (r, "\"%s\" given twice", key);
            *slot = u;
        }
        else
            return s_fail (r, "unknown key \"%s\"", key);
    } while (s_more (r, '}') == 1);
    if (r->failed)
        return -1;
    if (s_skip_ws (r) >= 0)
        return s_fail (r, "data after the JSON object");
    if (ferror (r->file))
        return s_fail (r, "read error");
    return 0;
}

static void
s_doc_free (s_doc_t *doc)
{
    for (size_t i = 0; i < doc->word_count; i++)
        free (doc->words[i]);
    for (size_t i = 0; i < doc->entry_count; i++)
        free (doc->entries[i].word);
    free (doc->words);
    free (doc->word_lens);
    free (doc->entries);
    free (doc->values);
}

//  qsort_r order of ranks by their words.
static int
s_rank_cmp (const void *a, const void *b, void *arg)
{
    char **words = arg;
    return strcmp (words[*(const uint32_t *) a], words[*(const uint32_t *) b]);
}

//  The first principal direction (uncentred, as SIF's) of the SIF-weighted
//  vectors of the TOP most frequent words, each counted by its estimated
//  probability: the second moment of a weighted word drawn from running
//  text, which is what a sentence vector sums. Deterministic: power
//  iteration from a fixed start.
static void
s_common (const float *vectors, size_t dim, size_t count, double a, float *out)
{
    size_t top = count < AIGW_VECTORS_COMMON_WORDS ? count : AIGW_VECTORS_COMMON_WORDS;
    double harmonic = s_harmonic (count);
    double *m = calloc (dim * dim, sizeof *m);
    double *v = malloc (dim * sizeof *v), *next = malloc (dim * sizeof *next);
    assert (m && v && next);
    for (size_t r = 0; r < top; r++) {
        double p = 1.0 / ((double) (r + 1) * harmonic), w = a / (a + p);
        double k = p * w * w;
        const float *x = vectors + r * dim;
        for (size_t i = 0; i < dim; i++)
            for (size_t j = 0; j < dim; j++)
                m[i * dim + j] += k * x[i] * x[j];
    }
    for (size_t i = 0; i < dim; i++)
        v[i] = 1.0 / sqrt ((double) dim);
    for (int it = 0; it < S_POWER_ITERATIONS; it++) {
        double norm = 0;
        for (size_t i = 0; i < dim; i++) {
            next[i] = 0;
            for (size_t j = 0; j < dim; j++)
                next[i] += m[i * dim + j] * v[j];
            norm += next[i] * next[i];
        }
        norm = sqrt (norm);
        for (size_t i = 0; i < dim; i++)
            v[i] = norm > 0 ? next[i] / norm : 0;
    }
    for (size_t i = 0; i < dim; i++)
        out[i] = (float) v[i];
    free (m);
    free (v);
    free (next);
}

//  Check the document as a whole and write the binary to OUT.
static int
s_build (s_doc_t *doc, aigw_vectors_kind_t kind, FILE *out, char *err, size_t err_size)
{
    if (doc->dimensions < 1 || doc->size < 1 || !doc->words || !doc->entries) {
        s_err (err, err_size,
               "import: \"dimensions\", \"size\", \"words\" and \"vectors\" are "
               "all required");
        return -1;
    }
    size_t dim = (size_t) doc->dimensions, count = (size_t) doc->size;
    if (doc->word_count != count || doc->entry_count != count) {
        s_err (err, err_size, "import: size is %zu but there are %zu words and %zu vectors", count,
               doc->word_count, doc->entry_count);
        return -1;
    }
    int rc = -1;
    size_t *by_rank = malloc (count * sizeof *by_rank);
    float *vectors = malloc (count * dim * sizeof *vectors);
    float *scale = calloc (count, sizeof *scale);
    int8_t *q = malloc (count * dim);
    uint32_t *offsets = malloc ((count + 1) * sizeof *offsets);
    uint32_t *sorted = malloc (count * sizeof *sorted);
    float *common = malloc (dim * sizeof *common);
    if (!by_rank || !vectors || !scale || !q || !offsets || !sorted || !common) {
        s_err (err, err_size, "import: out of memory");
        goto done;
    }
    for (size_t r = 0; r < count; r++)
        by_rank[r] = SIZE_MAX;
    for (size_t e = 0; e < count; e++) {
        s_entry_t *entry = &doc->entries[e];
        uint32_t r = entry->rank;
        if (entry->len == 0 || strlen (entry->word) != entry->len) {
            s_err (err, err_size, "import: vector %zu has an empty or NUL-bearing word", e);
            goto done;
        }
        if (by_rank[r] != SIZE_MAX || doc->word_lens[r] != entry->len
            || memcmp (doc->words[r], entry->word, entry->len) != 0) {
            s_err (err, err_size, "import: vector \"%s\" has word index %u, which is \"%s\"%s",
                   entry->word, r, doc->words[r], by_rank[r] != SIZE_MAX ? " (again)" : "");
            goto done;
        }
        by_rank[r] = e;
    }
    //  Vectors by rank; int8 keeps a scale per vector (max |x| / 127).
    size_t pool = 0;
    for (size_t r = 0; r < count; r++) {
        const float *src = doc->values + by_rank[r] * dim;
        float *dst = vectors + r * dim;
        float peak = 0;
        for (size_t d = 0; d < dim; d++)
            peak = fabsf (src[d]) > peak ? fabsf (src[d]) : peak;
        scale[r] = peak / 127.0f;
        for (size_t d = 0; d < dim; d++) {
            if (kind == AIGW_VECTORS_I8) {
                long v = peak > 0 ? lroundf (src[d] / scale[r]) : 0;
                q[r * dim + d] = (int8_t) (v > 127 ? 127 : v < -127 ? -127 : v);
                dst[d] = scale[r] * q[r * dim + d];
            }
            else
                dst[d] = src[d];
        }
        offsets[r] = (uint32_t) pool;
        pool += doc->word_lens[r];
        sorted[r] = (uint32_t) r;
        if (pool > UINT32_MAX) {
            s_err (err, err_size, "import: words too long in total");
            goto done;
        }
    }
    offsets[count] = (uint32_t) pool;
    qsort_r (sorted, count, sizeof *sorted, s_rank_cmp, doc->words);
    for (size_t i = 1; i < count; i++)
        if (strcmp (doc->words[sorted[i - 1]], doc->words[sorted[i]]) == 0) {
            s_err (err, err_size, "import: word \"%s\" twice", doc->words[sorted[i]]);
            goto done;
        }
    s_common (vectors, dim, count, AIGW_VECTORS_SIF_A, common);

    unsigned char header[S_HEADER_SIZE] = S_MAGIC;
    uint32_t fields[5]
        = {S_VERSION, (uint32_t) dim, (uint32_t) count, (uint32_t) kind, (uint32_t) pool};
    memcpy (header + 8, fields, sizeof fields);
    float a = (float) AIGW_VECTORS_SIF_A;
    memcpy (header + 28, &a, sizeof a);
    static const unsigned char zeros[4] = {0};
    bool ok = fwrite (header, sizeof header, 1, out) == 1
              && fwrite (common, sizeof *common, dim, out) == dim;
    if (kind == AIGW_VECTORS_I8)
        ok = ok && fwrite (scale, sizeof *scale, count, out) == count
             && fwrite (q, 1, count * dim, out) == count * dim
             && fwrite (zeros, 1, s_align4 (count * dim) - count * dim, out)
                    == s_align4 (count * dim) - count * dim;
    else
        ok = ok && fwrite (vectors, sizeof *vectors, count * dim, out) == count * dim;
    ok = ok && fwrite (offsets, sizeof *offsets, count + 1, out) == count + 1
         && fwrite (sorted, sizeof *sorted, count, out) == count;
    for (size_t r = 0; ok && r < count; r++)
        ok = fwrite (doc->words[r], 1, doc->word_lens[r], out) == doc->word_lens[r];
    if (!ok) {
        s_err (err, err_size, "import: write failed: %s", strerror (errno));
        goto done;
    }
    rc = 0;
done:
    free (by_rank);
    free (vectors);
    free (scale);
    free (q);
    free (offsets);
    free (sorted);
    free (common);
    return rc;
}

int
aigw_vectors_import (const char *json_path, const char *out_path, aigw_vectors_kind_t kind,
                     char *err, size_t err_size)
{
    assert (kind == AIGW_VECTORS_F32 || kind == AIGW_VECTORS_I8);
    FILE *in = fopen (json_path, "rb");
    if (!in) {
        s_err (err, err_size, "import: cannot open %s: %s", json_path, strerror (errno));
        return -1;
    }
    s_reader_t reader = {.file = in, .err = err, .err_size = err_size};
    reader.buf = malloc (S_READ_CHUNK);
    s_doc_t doc = {.dimensions = -1, .size = -1, .l2_index = -1, .word_index = -1};
    int rc = -1;
    if (!reader.buf)
        s_err (err, err_size, "import: out of memory");
    else if (s_read_doc (&reader, &doc) == 0) {
        //  A temporary beside the target, renamed over it when complete: a
        //  gateway that maps the old file keeps its inode.
        char tmp[4096];
        if (snprintf (tmp, sizeof tmp, "%s.tmp.%d", out_path, (int) getpid ()) >= (int) sizeof tmp)
            s_err (err, err_size, "import: output path too long");
        else {
            FILE *out = fopen (tmp, "wb");
            if (!out)
                s_err (err, err_size, "import: cannot create %s: %s", tmp, strerror (errno));
            else {
                rc = s_build (&doc, kind, out, err, err_size);
                if (fclose (out) != 0 && rc == 0) {
                    s_err (err, err_size, "import: write failed: %s", strerror (errno));
                    rc = -1;
                }
                if (rc == 0 && rename (tmp, out_path) != 0) {
                    s_err (err, err_size, "import: cannot rename to %s: %s", out_path,
                           strerror (errno));
                    rc = -1;
                }
                if (rc != 0)
                    unlink (tmp);
            }
        }
    }
    s_doc_free (&doc);
    free (reader.buf);
    fclose (in);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

//  A small file in the wink shape: 4 words, 3 dimensions.
static const char *s_test_json
    = "{\"precision\":8,\"l2NormIndex\":3,\"wordIndex\":4,\"size\":4,\"dimensions\":3,"
      "\"words\":[\"the\",\"cat\",\"dog\",\"caf\\u00e9\"],"
      "\"vectors\":{\"the\":[0.1,0.2,-0.3,0.37,0],\"cat\":[1,0.5,0,1.1,1],"
      "\"dog\":[0.9,0.6,0.1e0,1.1,2],\"caf\\u00e9\":[-1,2.5E-1,0,1.03,3]},"
      "\"unkVector\":[0,0,0,0,-1]}";

static char *
s_test_write (const char *dir, const char *name, const void *data, size_t len)
{
    char *path = malloc (strlen (dir) + strlen (name) + 2);
    assert (path);
    sprintf (path, "%s/%s", dir, name);
    FILE *f = fopen (path, "wb");
    assert (f);
    assert (fwrite (data, 1, len, f) == len);
    fclose (f);
    return path;
}

static char *
s_test_read (const char *path, size_t *len_p)
{
    FILE *f = fopen (path, "rb");
    assert (f);
    fseek (f, 0, SEEK_END);
    long len = ftell (f);
    fseek (f, 0, SEEK_SET);
    char *data = malloc ((size_t) len + 1);
    assert (data && fread (data, 1, (size_t) len, f) == (size_t) len);
    fclose (f);
    *len_p = (size_t) len;
    return data;
}

void
aigw_vectors_test (bool verbose)
{
    char dir[] = "/tmp/aigw_vectors_test.XXXXXX";
    assert (mkdtemp (dir));
    char err[256];
    char *json = s_test_write (dir, "v.json", s_test_json, strlen (s_test_json));
    char out[4200];
    snprintf (out, sizeof out, "%s/v.bin", dir);

    //  Both kinds import, load and answer the same words.
    aigw_vectors_kind_t kinds[] = {AIGW_VECTORS_F32, AIGW_VECTORS_I8};
    for (int k = 0; k < 2; k++) {
        assert (aigw_vectors_import (json, out, kinds[k], err, sizeof err) == 0);
        aigw_vectors_t *v = aigw_vectors_open (out, err, sizeof err);
        assert (v);
        assert (aigw_vectors_dim (v) == 3 && aigw_vectors_count (v) == 4);
        assert (aigw_vectors_kind (v) == kinds[k]);
        assert (aigw_vectors_find (v, "the", 3) == 0);
        assert (aigw_vectors_find (v, "dog", 3) == 2);
        assert (aigw_vectors_find (v, "caf\xc3\xa9", 5) == 3);
        assert (aigw_vectors_find (v, "cow", 3) == -1);
        assert (aigw_vectors_find (v, "", 0) == -1);
        assert (aigw_vectors_find (v, "dogs", 4) == -1);
        size_t len;
        assert (memcmp (aigw_vectors_word (v, 1, &len), "cat", 3) == 0 && len == 3);
        float x[3];
        aigw_vectors_get (v, 3, x);
        assert (fabsf (x[0] + 1) < 0.01f && fabsf (x[1] - 0.25f) < 0.01f && x[2] == 0);
        assert (aigw_vectors_similarity (v, 1, 2) > 0.9);
        assert (aigw_vectors_similarity (v, 1, 1) > 0.999);
        assert (aigw_vectors_prob (v, 0) > aigw_vectors_prob (v, 3));
        assert (fabs (aigw_vectors_sif_a (v) - AIGW_VECTORS_SIF_A) < 1e-9);
        const float *c = aigw_vectors_common (v);
        double norm = 0;
        for (int d = 0; d < 3; d++)
            norm += c[d] * c[d];
        assert (fabs (norm - 1) < 1e-3);
        aigw_vectors_destroy (&v);
        aigw_vectors_destroy (&v);
        assert (v == NULL);
    }

    //  Every truncation of the JSON is an error, never a crash or a file.
    char bad[4200];
    snprintf (bad, sizeof bad, "%s/bad.bin", dir);
    size_t json_len = strlen (s_test_json);
    for (size_t cut = 0; cut < json_len; cut++) {
        char *path = s_test_write (dir, "t.json", s_test_json, cut);
        err[0] = 0;
        assert (aigw_vectors_import (path, bad, AIGW_VECTORS_I8, err, sizeof err) == -1);
        assert (err[0]);
        assert (access (bad, F_OK) != 0);
        free (path);
    }
    //  Malformed documents, each with its reason.
    const char *malformed[][2] = {
        {"{\"size\":1}", "required"},
        {"{\"sizes\":1}", "unknown key"},
        {"[1]", "expected '{'"},
        {"{\"size\":1.5}", "integer"},
        {"{\"size\":01}", "expected ','"},
        {"{\"size\":-1}", "integer"},
        {"{\"size\":1e999}", "out of range"},
        {"{\"dimensions\":2,\"dimensions\":2}", "twice"},
        {"{\"words\":[\"a\\x\"]}", "bad escape"},
        {"{\"words\":[\"\\ud800\"]}", "surrogate"},
        {"{\"words\":[\"a\"]} x", "after the JSON"},
        {"{\"vectors\":{}}", "before"},
        {"{\"dimensions\":1,\"size\":1,\"l2NormIndex\":1,\"wordIndex\":2,\"words\":[\"a\"],"
         "\"vectors\":{\"a\":[1,1]}}",
         "has 2 numbers"},
        {"{\"dimensions\":1,\"size\":1,\"l2NormIndex\":1,\"wordIndex\":2,\"words\":[\"a\"],"
         "\"vectors\":{\"a\":[1,1,0,4]}}",
         "more than"},
        {"{\"dimensions\":1,\"size\":2,\"l2NormIndex\":1,\"wordIndex\":2,\"words\":[\"a\",\"b\"],"
         "\"vectors\":{\"a\":[1,1,1],\"b\":[1,1,0]}}",
         "word index"},
        {"{\"dimensions\":1,\"size\":2,\"l2NormIndex\":1,\"wordIndex\":2,\"words\":[\"a\",\"b\"],"
         "\"vectors\":{\"a\":[1,1,0]}}",
         "size is 2"},
        {"{\"dimensions\":1,\"size\":2,\"l2NormIndex\":1,\"wordIndex\":2,\"words\":[\"a\",\"a\"],"
         "\"vectors\":{\"a\":[1,1,0],\"a\":[1,1,1]}}",
         "twice"},
        {"{\"dimensions\":1,\"size\":1,\"l2NormIndex\":0,\"wordIndex\":2,\"words\":[\"a\"],"
         "\"vectors\":{\"a\":[1,1,0]}}",
         "follow the vector"},
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        char *path = s_test_write (dir, "m.json", malformed[i][0], strlen (malformed[i][0]));
        err[0] = 0;
        assert (aigw_vectors_import (path, bad, AIGW_VECTORS_I8, err, sizeof err) == -1);
        if (verbose || !strstr (err, malformed[i][1]))
            fprintf (stderr, "\n   %s -> %s", malformed[i][0], err);
        assert (strstr (err, malformed[i][1]));
        free (path);
    }
    assert (aigw_vectors_import ("/nonexistent/x.json", bad, AIGW_VECTORS_I8, err, sizeof err)
            == -1);

    //  The loader refuses every truncation and flags corruption it would
    //  trust; any flipped byte gives either a refusal or a file whose
    //  lookups stay inside it.
    assert (aigw_vectors_import (json, out, AIGW_VECTORS_I8, err, sizeof err) == 0);
    size_t bin_len;
    char *bin = s_test_read (out, &bin_len);
    for (size_t cut = 0; cut < bin_len; cut++)
        assert (aigw_vectors_new_from (bin, cut, err, sizeof err) == NULL);
    for (size_t at = 0; at < bin_len; at++) {
        char *copy = malloc (bin_len);
        assert (copy);
        memcpy (copy, bin, bin_len);
        copy[at] ^= 0x5a;
        aigw_vectors_t *v = aigw_vectors_new_from (copy, bin_len, err, sizeof err);
        if (v) {
            for (size_t r = 0; r < aigw_vectors_count (v); r++) {
                size_t len;
                const char *w = aigw_vectors_word (v, r, &len);
                assert (aigw_vectors_find (v, w, len) == (int64_t) r);
            }
            aigw_vectors_destroy (&v);
        }
        free (copy);
    }
    //  Words out of order: refused.
    assert (aigw_vectors_open ("/nonexistent/v.bin", err, sizeof err) == NULL);
    free (bin);
    unlink (out);
    unlink (bad);
    char *paths[] = {"v.json", "t.json", "m.json"};
    for (int i = 0; i < 3; i++) {
        char p[4200];
        snprintf (p, sizeof p, "%s/%s", dir, paths[i]);
        unlink (p);
    }
    rmdir (dir);
    free (json);
}
