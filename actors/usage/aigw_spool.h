/*  aigw_spool: the usage actor's durable spool, an append-only file of
    batches kept on local disk while the database is away or slow.

    Each append is one frame (magic, length, record count, CRC-32, then the
    batch's bytes), written and fdatasync'ed before it returns, so a batch
    the actor acknowledged survives a crash of the process or the machine.
    Frames are replayed oldest first; when every frame is in the database
    the file is truncated. On open the frames are checked from the start
    and a torn or corrupt tail (a crash in the middle of a write) is cut
    off. The file is bounded: an append that would pass the bound is
    refused, and the caller counts the batch as dropped. One process holds
    the file (an exclusive flock). */
#ifndef AIGW_SPOOL_H_INCLUDED
#define AIGW_SPOOL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _aigw_spool_t aigw_spool_t;

//  Open (creating) the spool at PATH, bounded to MAX_BYTES. NULL, with the
//  reason in ERR, when it cannot be opened or another process holds it.
aigw_spool_t *aigw_spool_new (const char *path, size_t max_bytes, char *err, size_t err_size);

//  Close; nulls *SELF_P.
void aigw_spool_destroy (aigw_spool_t **self_p);

//  Append SIZE bytes holding RECORDS records as one frame and fdatasync.
//  0; 1 when the bound refused it (nothing written); -1 on an I/O error.
int aigw_spool_append (aigw_spool_t *self, const char *data, size_t size, uint32_t records);

//  The oldest frames not yet replayed, concatenated, up to MAX_BYTES (at
//  least one frame): a new buffer in *DATA (caller frees), its size,
//  frame and record counts. 0, or -1 when empty or on a read error.
int aigw_spool_peek (aigw_spool_t *self, size_t max_bytes, char **data, size_t *size,
                     uint32_t *frames, uint64_t *records);

//  FRAMES frames from the last peek are in the database: move past them;
//  when none is left, truncate the file.
void aigw_spool_consume (aigw_spool_t *self, uint32_t frames);

//  Frames, records and bytes not yet replayed.
size_t aigw_spool_frames (aigw_spool_t *self);
uint64_t aigw_spool_records (aigw_spool_t *self);
size_t aigw_spool_bytes (aigw_spool_t *self);

void aigw_spool_test (bool verbose);

#endif
