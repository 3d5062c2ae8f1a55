/* file.c - regular files opened for reading, refusing anything else unread
 * (see file.h). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const mm_file_status_names[] = {"ok", "missing", "not a regular file", "too large", "unreadable"};
const char *const mm_file_kind_names[] = {"missing", "file",   "directory", "fifo", "character device",
                                          "block device", "socket", "other"};
_Static_assert(sizeof mm_file_status_names / sizeof *mm_file_status_names == MM_FILE_STATUS_COUNT, "a name per status");
_Static_assert(sizeof mm_file_kind_names / sizeof *mm_file_kind_names == MM_KIND_COUNT, "a name per kind");

#define LARGEST ((int64_t)1 << 40) /* no file mmfuse reads is larger: refused as too large even without a cap */

static int kind_of(mode_t m) {
  if (S_ISREG(m)) return MM_KIND_REGULAR;
  if (S_ISDIR(m)) return MM_KIND_DIRECTORY;
  if (S_ISFIFO(m)) return MM_KIND_FIFO;
  if (S_ISCHR(m)) return MM_KIND_CHARDEV;
  if (S_ISBLK(m)) return MM_KIND_BLOCKDEV;
  if (S_ISSOCK(m)) return MM_KIND_SOCKET;
  return MM_KIND_OTHER;
}

static int fail(int *status, int st, mm_err *e, const char *path, const char *what, int err) {
  if (status) *status = st;
  if (err) return mm_errorf(e, MM_EIO, "%s: %s: %s", path, what, strerror(err));
  return mm_errorf(e, MM_EIO, "%s: %s", path, what);
}

static int missing_errno(int err) { return err == ENOENT || err == ENOTDIR; }

int mm_file_stat(const char *path, int *kind, int64_t *size, mm_err *e) {
  struct stat st;
  *kind = MM_KIND_MISSING;
  *size = 0;
  if (stat(path, &st) != 0) {
    if (missing_errno(errno)) return MM_OK;
    return mm_errorf(e, MM_EIO, "%s: cannot stat: %s", path, strerror(errno));
  }
  *kind = kind_of(st.st_mode);
  if (*kind == MM_KIND_REGULAR) *size = (int64_t)st.st_size;
  return MM_OK;
}

/* "a FIFO", "a directory", ... for the refusal message */
static const char *article_kind(int kind) {
  switch (kind) {
  case MM_KIND_DIRECTORY: return "a directory";
  case MM_KIND_FIFO: return "a FIFO";
  case MM_KIND_CHARDEV: return "a character device";
  case MM_KIND_BLOCKDEV: return "a block device";
  case MM_KIND_SOCKET: return "a socket";
  default: return "not a regular file";
  }
}

static int refuse_kind(int *status, mm_err *e, const char *path, int kind) {
  if (status) *status = MM_FILE_NOT_REGULAR;
  return mm_errorf(e, MM_EIO, "%s: not a regular file (%s): refused without reading it", path, article_kind(kind));
}

static int refuse_size(int *status, mm_err *e, const char *path, int64_t size, int64_t max_bytes) {
  if (status) *status = MM_FILE_TOO_LARGE;
  return mm_errorf(e, MM_EIO, "%s: %lld bytes, more than the limit of %lld: refused without reading it", path,
                   (long long)size, (long long)max_bytes);
}

int mm_file_open(const char *path, int64_t max_bytes, int *fd, int64_t *size, int *status, mm_err *e) {
  *fd = -1;
  *size = 0;
  if (status) *status = MM_FILE_OK;
  if (!path || !*path) return fail(status, MM_FILE_MISSING, e, "<no path>", "cannot open an empty path", 0);
  int64_t cap = max_bytes > 0 && max_bytes < LARGEST ? max_bytes : LARGEST;
  struct stat st;
  if (stat(path, &st) != 0) {
    int err = errno;
    return fail(status, missing_errno(err) ? MM_FILE_MISSING : MM_FILE_UNREADABLE, e, path, "cannot open", err);
  }
  if (!S_ISREG(st.st_mode)) return refuse_kind(status, e, path, kind_of(st.st_mode));
  if ((int64_t)st.st_size > cap) return refuse_size(status, e, path, (int64_t)st.st_size, cap);
  int f;
  do f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  while (f < 0 && errno == EINTR);
  if (f < 0) {
    int err = errno;
    return fail(status, missing_errno(err) ? MM_FILE_MISSING : MM_FILE_UNREADABLE, e, path, "cannot open", err);
  }
  struct stat st2;
  if (fstat(f, &st2) != 0) {
    int err = errno;
    close(f);
    return fail(status, MM_FILE_UNREADABLE, e, path, "cannot stat", err);
  }
  if (!S_ISREG(st2.st_mode)) {
    close(f);
    return refuse_kind(status, e, path, kind_of(st2.st_mode));
  }
  if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
    close(f);
    return fail(status, MM_FILE_UNREADABLE, e, path, "the file changed while it was opened", 0);
  }
  if ((int64_t)st2.st_size > cap) {
    close(f);
    return refuse_size(status, e, path, (int64_t)st2.st_size, cap);
  }
  *fd = f;
  *size = (int64_t)st2.st_size;
  return MM_OK;
}

FILE *mm_file_fopen(const char *path, int64_t max_bytes, int64_t *size, int *status, mm_err *e) {
  int fd;
  int64_t sz;
  if (mm_file_open(path, max_bytes, &fd, &sz, status, e)) return NULL;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    int err = errno;
    close(fd);
    fail(status, MM_FILE_UNREADABLE, e, path, "cannot open", err);
    return NULL;
  }
  if (size) *size = sz;
  return f;
}

static int oom(int *status, mm_err *e, const char *path) {
  if (status) *status = MM_FILE_UNREADABLE;
  return mm_errorf(e, MM_ENOMEM, "%s: out of memory reading the file", path);
}

int mm_file_read(const char *path, int64_t max_bytes, uint8_t *buf, size_t cap, uint8_t **data, uint8_t **heap,
                 size_t *len, int *status, mm_err *e) {
  *data = *heap = NULL;
  *len = 0;
  int fd;
  int64_t size;
  int rc = mm_file_open(path, max_bytes, &fd, &size, status, e);
  if (rc) return rc;
  int64_t limit = max_bytes > 0 && max_bytes < LARGEST ? max_bytes : LARGEST;
  /* room for the fstat size + 2: one byte for the read that finds the end of
   * the file (no growth needed), one for the NUL past the data */
  uint8_t *b = buf;
  if (!b || (uint64_t)size + 2 > cap) {
    cap = (size_t)size + 2;
    b = *heap = malloc(cap);
    if (!b) {
      close(fd);
      return oom(status, e, path);
    }
  }
  size_t n = 0;
  for (;;) {
    if (n + 1 >= cap) { /* the file grew since fstat: the cap still holds */
      size_t ncap = cap * 2;
      if (ncap > (size_t)limit + 2) ncap = (size_t)limit + 2;
      uint8_t *nb = realloc(*heap, ncap);
      if (!nb) {
        free(*heap);
        *heap = NULL;
        close(fd);
        return oom(status, e, path);
      }
      if (!*heap) memcpy(nb, b, n); /* b was the caller's buffer */
      *heap = b = nb;
      cap = ncap;
    }
    ssize_t got = read(fd, b + n, cap - 1 - n);
    if (got < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      free(*heap);
      *heap = NULL;
      close(fd);
      return fail(status, MM_FILE_UNREADABLE, e, path, "read error", err);
    }
    if (got == 0) break;
    n += (size_t)got;
    if ((int64_t)n > limit) {
      free(*heap);
      *heap = NULL;
      close(fd);
      return refuse_size(status, e, path, (int64_t)n, limit);
    }
  }
  close(fd);
  b[n] = 0;
  *data = b;
  *len = n;
  return MM_OK;
}

int mm_file_read_all(const char *path, int64_t max_bytes, uint8_t **out, size_t *len, int *status, mm_err *e) {
  uint8_t *data, *heap;
  *out = NULL;
  int rc = mm_file_read(path, max_bytes, NULL, 0, &data, &heap, len, status, e);
  if (rc) return rc;
  *out = heap;
  return MM_OK;
}
