#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mm_errorf(mm_err *e, int code, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
  }
  return code;
}

int mm_err_prefix(mm_err *e, const char *fmt, ...) {
  if (!e) return MM_EINVAL;
  char head[MM_ERRLEN], old[MM_ERRLEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  memcpy(old, e->msg, sizeof old);
  size_t hl = strnlen(head, sizeof head - 1);
  size_t ol = strnlen(old, sizeof old - 1);
  if (ol > sizeof e->msg - 1 - hl) ol = sizeof e->msg - 1 - hl;
  memcpy(e->msg, head, hl);
  memcpy(e->msg + hl, old, ol);
  e->msg[hl + ol] = '\0';
  return e->code;
}
