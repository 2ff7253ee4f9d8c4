/*  aigw_spool: append-only spool file of usage batches. */
#include "aigw_spool.h"
#include "aigw_log.h"

#include <czmq.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

//  Frame header: magic, payload length, record count, CRC-32 of the
//  payload; little-endian u32 each.
#define S_MAGIC  0x50534741u  //  "AGSP"
#define S_HEADER 16
//  Largest frame payload accepted on open (a longer length is corruption).
#define S_FRAME_MAX (256u * 1024 * 1024)

struct _aigw_spool_t {
    char *path;             //  file path
    int fd;                 //  the file, flock'ed
    size_t max_bytes;       //  bound on the file's size
    size_t end;             //  end of the last valid frame (the file's size)
    size_t read;            //  start of the oldest frame not replayed
    size_t frames;          //  frames after read
    uint64_t records;       //  records after read
    size_t peek_end;        //  where the last peek stopped
    uint64_t peek_records;  //  records it covered
};

static uint32_t s_crc_table[256];

static void
s_crc_init (void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        s_crc_table[i] = c;
    }
}

static uint32_t
s_crc32 (const void *data, size_t size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_crc_init);
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < size; i++)
        c = s_crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void
s_put32 (uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v, p[1] = (uint8_t) (v >> 8), p[2] = (uint8_t) (v >> 16),
    p[3] = (uint8_t) (v >> 24);
}

static uint32_t
s_get32 (const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

//  Read exactly SIZE bytes at OFFSET. 0 or -1.
static int
s_pread (int fd, void *buf, size_t size, size_t offset)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread (fd, (char *) buf + done, size - done, (off_t) (offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t) n;
    }
    return 0;
}

//  Check the frames from the start; cut a bad tail off.
static int
s_scan (aigw_spool_t *self)
{
    struct stat st;
    if (fstat (self->fd, &st))
        return -1;
    size_t size = (size_t) st.st_size;
    size_t at = 0;
    char *buf = NULL;
    while (at + S_HEADER <= size) {
        uint8_t head[S_HEADER];
        if (s_pread (self->fd, head, S_HEADER, at))
            break;
        uint32_t len = s_get32 (head + 4);
        if (s_get32 (head) != S_MAGIC || len > S_FRAME_MAX || at + S_HEADER + len > size)
            break;
        char *grown = realloc (buf, len ? len : 1);
        if (!grown)
            break;
        buf = grown;
        if (s_pread (self->fd, buf, len, at + S_HEADER)
            || s_crc32 (buf, len) != s_get32 (head + 12))
            break;
        self->frames++;
        self->records += s_get32 (head + 8);
        at += S_HEADER + len;
    }
    free (buf);
    if (at < size) {
        aigw_warn ("usage spool %s: %zu bytes of a torn or corrupt tail cut off", self->path,
                   size - at);
        if (ftruncate (self->fd, (off_t) at) || fdatasync (self->fd))
            return -1;
    }
    self->end = at;
    return 0;
}

aigw_spool_t *
aigw_spool_new (const char *path, size_t max_bytes, char *err, size_t err_size)
{
    aigw_spool_t *self = calloc (1, sizeof *self);
    assert (self);
    self->path = strdup (path);
    self->max_bytes = max_bytes;
    self->fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->fd < 0) {
        snprintf (err, err_size, "usage spool %s: %s", path, strerror (errno));
        aigw_spool_destroy (&self);
        return NULL;
    }
    if (flock (self->fd, LOCK_EX | LOCK_NB)) {
        snprintf (err, err_size, "usage spool %s: held by another process", path);
        aigw_spool_destroy (&self);
        return NULL;
    }
    if (s_scan (self)) {
        snprintf (err, err_size, "usage spool %s: %s", path, strerror (errno));
        aigw_spool_destroy (&self);
        return NULL;
    }
    if (self->frames)
        aigw_info ("usage spool %s: %zu batches (%" PRIu64 " records) to replay", path,
                   self->frames, self->records);
    return self;
}

void
aigw_spool_destroy (aigw_spool_t **self_p)
{
    aigw_spool_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close (self->fd);
    free (self->path);
    free (self);
    *self_p = NULL;
}

int
aigw_spool_append (aigw_spool_t *self, const char *data, size_t size, uint32_t records)
{
    if (size > S_FRAME_MAX || self->end + S_HEADER + size > self->max_bytes)
        return 1;
    uint8_t head[S_HEADER];
    s_put32 (head, S_MAGIC);
    s_put32 (head + 4, (uint32_t) size);
    s_put32 (head + 8, records);
    s_put32 (head + 12, s_crc32 (data, size));
    struct iovec iov[2] = {{head, S_HEADER}, {(void *) data, size}};
    size_t want = S_HEADER + size, done = 0;
    while (done < want) {
        ssize_t n = pwritev (self->fd, iov, 2, (off_t) (self->end + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto failed;
        done += (size_t) n;
        if (done < want) {
            //  A short write: carry on from where it stopped.
            size_t skip = (size_t) n;
            for (int i = 0; i < 2; i++) {
                size_t take = skip < iov[i].iov_len ? skip : iov[i].iov_len;
                iov[i].iov_base = (char *) iov[i].iov_base + take;
                iov[i].iov_len -= take;
                skip -= take;
            }
        }
    }
    if (fdatasync (self->fd))
        goto failed;
    self->end += want;
    self->frames++;
    self->records += records;
    return 0;
failed:
    aigw_error ("usage spool %s: write failed: %s", self->path, strerror (errno));
    //  Whatever went out is a torn tail: the next append overwrites it.
    return -1;
}

int
aigw_spool_peek (aigw_spool_t *self, size_t max_bytes, char **data, size_t *size, uint32_t *frames,
                 uint64_t *records)
{
    *data = NULL;
    *size = 0;
    *frames = 0;
    *records = 0;
    size_t at = self->read;
    char *buf = NULL;
    size_t used = 0;
    while (at < self->end) {
        uint8_t head[S_HEADER];
        if (s_pread (self->fd, head, S_HEADER, at))
            break;
        uint32_t len = s_get32 (head + 4);
        if (*frames && used + len > max_bytes)
            break;
        char *grown = realloc (buf, used + len + 1);
        if (!grown || s_pread (self->fd, grown + used, len, at + S_HEADER)) {
            buf = grown ? grown : buf;
            break;
        }
        buf = grown;
        used += len;
        (*frames)++;
        *records += s_get32 (head + 8);
        at += S_HEADER + len;
    }
    if (!*frames) {
        free (buf);
        return -1;
    }
    *data = buf;
    *size = used;
    self->peek_end = at;
    self->peek_records = *records;
    return 0;
}

void
aigw_spool_consume (aigw_spool_t *self, uint32_t frames)
{
    assert (frames <= self->frames);
    self->read = self->peek_end;
    self->frames -= frames;
    self->records -= self->peek_records;
    if (self->frames == 0) {
        if (ftruncate (self->fd, 0) == 0)
            fdatasync (self->fd);
        self->read = self->end = 0;
        self->records = 0;
    }
}

size_t
aigw_spool_frames (aigw_spool_t *self)
{
    return self->frames;
}

uint64_t
aigw_spool_records (aigw_spool_t *self)
{
    return self->records;
}

size_t
aigw_spool_bytes (aigw_spool_t *self)
{
    return self->end - self->read;
}

void
aigw_spool_test (bool verbose)
{
    char path[64];
    snprintf (path, sizeof path, "/tmp/aigw-spool-test-%d", (int) getpid ());
    unlink (path);
    char err[256];
    aigw_spool_t *spool = aigw_spool_new (path, 4096, err, sizeof err);
    assert (spool);
    //  A second holder is refused.
    assert (!aigw_spool_new (path, 4096, err, sizeof err) && strstr (err, "held"));
    char *data;
    size_t size;
    uint32_t frames;
    uint64_t records;
    assert (aigw_spool_peek (spool, 1 << 20, &data, &size, &frames, &records) == -1);
    //  Append three batches: replayed in order, together within the bound.
    assert (aigw_spool_append (spool, "a1\na2\n", 6, 2) == 0);
    assert (aigw_spool_append (spool, "b1\n", 3, 1) == 0);
    assert (aigw_spool_append (spool, "c1\nc2\nc3\n", 9, 3) == 0);
    assert (aigw_spool_frames (spool) == 3 && aigw_spool_records (spool) == 6);
    assert (aigw_spool_peek (spool, 9, &data, &size, &frames, &records) == 0);
    assert (frames == 2 && records == 3 && size == 9 && memcmp (data, "a1\na2\nb1\n", 9) == 0);
    free (data);
    aigw_spool_consume (spool, frames);
    assert (aigw_spool_frames (spool) == 1 && aigw_spool_records (spool) == 3);
    //  Reopened before the rest is replayed: everything comes back (a
    //  replay is harmless), in order.
    aigw_spool_destroy (&spool);
    spool = aigw_spool_new (path, 4096, err, sizeof err);
    assert (spool && aigw_spool_frames (spool) == 3 && aigw_spool_records (spool) == 6);
    assert (aigw_spool_peek (spool, 1 << 20, &data, &size, &frames, &records) == 0);
    assert (frames == 3 && size == 18 && memcmp (data, "a1\na2\nb1\nc1\nc2\nc3\n", 18) == 0);
    free (data);
    aigw_spool_consume (spool, frames);
    assert (aigw_spool_frames (spool) == 0 && aigw_spool_bytes (spool) == 0);
    struct stat st;
    assert (stat (path, &st) == 0 && st.st_size == 0);
    //  The bound: a frame that would pass it is refused, nothing written.
    char big[2000];
    memset (big, 'x', sizeof big);
    assert (aigw_spool_append (spool, big, sizeof big, 1) == 0);
    assert (aigw_spool_append (spool, big, sizeof big, 1) == 0);
    assert (aigw_spool_append (spool, big, sizeof big, 1) == 1);
    assert (aigw_spool_frames (spool) == 2);
    //  A torn tail (half a frame) and then garbage: cut off on open.
    aigw_spool_destroy (&spool);
    int fd = open (path, O_WRONLY | O_APPEND);
    assert (fd >= 0);
    uint8_t head[S_HEADER];
    s_put32 (head, S_MAGIC);
    s_put32 (head + 4, 100);
    s_put32 (head + 8, 1);
    s_put32 (head + 12, 0);
    assert (write (fd, head, S_HEADER) == S_HEADER && write (fd, "torn", 4) == 4);
    close (fd);
    spool = aigw_spool_new (path, 4096, err, sizeof err);
    assert (spool && aigw_spool_frames (spool) == 2 && aigw_spool_records (spool) == 2);
    assert (stat (path, &st) == 0 && (size_t) st.st_size == 2 * (S_HEADER + sizeof big));
    //  A flipped byte inside the second frame: it and what follows go.
    aigw_spool_destroy (&spool);
    fd = open (path, O_WRONLY);
    assert (fd >= 0 && pwrite (fd, "y", 1, S_HEADER * 2 + sizeof big + 10) == 1);
    close (fd);
    spool = aigw_spool_new (path, 4096, err, sizeof err);
    assert (spool && aigw_spool_frames (spool) == 1);
    assert (aigw_spool_append (spool, "d1\n", 3, 1) == 0);
    assert (aigw_spool_peek (spool, 1 << 20, &data, &size, &frames, &records) == 0);
    assert (frames == 2 && records == 2 && size == sizeof big + 3);
    assert (memcmp (data + sizeof big, "d1\n", 3) == 0);
    free (data);
    aigw_spool_destroy (&spool);
    unlink (path);
    if (verbose)
        printf ("spool: ok\n");
}
