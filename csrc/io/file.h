/* file.h - opening the user's files for reading without being fooled by
 * what a path names.
 *
 * Every file of user data mmfuse reads (images, manifests, texts, label
 * files, word vectors, .npy, model files) is opened here. A path that does not
 * name a regular file - a FIFO, a device such as /dev/zero, a socket, a
 * directory - is refused WITHOUT being read:
 *   1. stat(path) first: a FIFO is never opened (its open() would wait for a
 *      writer forever) and a device is never opened (opening one can have
 *      effects, reading /dev/zero never ends);
 *   2. open(O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), then fstat() the
 *      descriptor: what was opened must still be a regular file, the same one
 *      stat() saw (a path swapped between the two calls is refused too).
 *      O_NONBLOCK changes nothing for a regular file's reads.
 * A size cap (max_bytes > 0) refuses a larger file from its fstat() size,
 * before any byte is read, and reading stops at the cap should the file grow
 * while it is read. max_bytes = 0: no cap.
 *
 * Every failure fills e with "<path>: <what>" and returns MM_EIO; *status
 * (when status != NULL) tells the cause, for callers that sort failures (the
 * folder-of-posts importer lists missing and refused files apart).
 */
#ifndef MM_IO_FILE_H
#define MM_IO_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/error.h"

enum {
  MM_FILE_OK = 0,
  MM_FILE_MISSING,     /* no such file (ENOENT, ENOTDIR) */
  MM_FILE_NOT_REGULAR, /* a FIFO, device, socket or directory: refused unread */
  MM_FILE_TOO_LARGE,   /* larger than max_bytes: refused unread */
  MM_FILE_UNREADABLE,  /* any other failure to open or read (permissions, I/O error) */
  MM_FILE_STATUS_COUNT
};
/* "ok", "missing", "not a regular file", "too large", "unreadable" (by status) */
extern const char *const mm_file_status_names[];

/* What a path names, from stat() (symbolic links followed). */
enum { MM_KIND_MISSING = 0, MM_KIND_REGULAR, MM_KIND_DIRECTORY, MM_KIND_FIFO, MM_KIND_CHARDEV, MM_KIND_BLOCKDEV,
       MM_KIND_SOCKET, MM_KIND_OTHER, MM_KIND_COUNT };
/* "missing", "file", "directory", "fifo", "character device", "block device", "socket", "other" */
extern const char *const mm_file_kind_names[];

/* stat(path): *kind (MM_KIND_*) and *size (bytes, regular files; else 0).
 * A missing path is not an error (kind MM_KIND_MISSING); other stat failures
 * (permissions on a folder, a name too long) are MM_EIO. Opens nothing. */
int mm_file_stat(const char *path, int *kind, int64_t *size, mm_err *e);

/* Open a regular file for reading (steps 1-2 above). On success *fd is open
 * (the caller closes it) and *size holds its size. */
int mm_file_open(const char *path, int64_t max_bytes, int *fd, int64_t *size, int *status, mm_err *e);

/* The same as a stdio stream ("rb"), for readers that stream a file. */
FILE *mm_file_fopen(const char *path, int64_t max_bytes, int64_t *size, int *status, mm_err *e);

/* Read a whole regular file. It goes into buf (cap bytes, may be NULL with
 * cap 0) when it fits, else into a malloc'd buffer returned in *heap (the
 * caller frees it; NULL when buf was used); *data points at the bytes, *len
 * is their count. One byte past the data is always writable and set to 0 (a
 * text reader may treat the data as a C string). An empty file is not an
 * error (*len = 0). */
int mm_file_read(const char *path, int64_t max_bytes, uint8_t *buf, size_t cap, uint8_t **data, uint8_t **heap,
                 size_t *len, int *status, mm_err *e);

/* mm_file_read into a malloc'd buffer always (NUL-terminated; caller frees). */
int mm_file_read_all(const char *path, int64_t max_bytes, uint8_t **out, size_t *len, int *status, mm_err *e);

#endif
