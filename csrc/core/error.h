/* error.h - how the C core reports failure.
 *
 * The core never aborts, exits or prints. A function that can fail takes an
 * `mm_err *` as its last argument, fills it with a message a user can act on,
 * and returns a non-zero code. The Lua binding turns the message into a Lua
 * error (see csrc/lua/mm_lua.h: mm_lua_raise).
 */
#ifndef MM_ERROR_H
#define MM_ERROR_H

#define MM_OK 0
#define MM_EINVAL 1   /* bad argument: shape, type, range */
#define MM_ENOMEM 2   /* allocation failed */
#define MM_EIO 3      /* file could not be read/written */
#define MM_EFORMAT 4  /* file content is corrupt or unsupported */
#define MM_ENUM 5     /* NaN/Inf met where a finite number is required */

#define MM_ERRLEN 512

typedef struct mm_err {
  int code;
  char msg[MM_ERRLEN];
} mm_err;

/* Record an error (printf-style) and return `code`; safe with e == NULL. */
int mm_errorf(mm_err *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefix an existing message ("while reading x.png: " + old). */
int mm_err_prefix(mm_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
