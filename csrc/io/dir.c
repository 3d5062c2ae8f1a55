/* dir.c - the names in a folder (see dir.h). */
#include "dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void mm_dir_free(char **names, int64_t n) {
  for (int64_t i = 0; names && i < n; i++) free(names[i]);
  free(names);
}

int mm_dir_list(const char *path, char ***names, int64_t *n, mm_err *e) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(path);
  if (!d) return mm_errorf(e, MM_EIO, "%s: cannot list the folder: %s", path, strerror(errno));
  char **v = NULL;
  int64_t cnt = 0, cap = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (cnt == cap) {
      int64_t nc = cap ? 2 * cap : 64;
      char **nv = realloc(v, (size_t)nc * sizeof *nv);
      if (!nv) goto oom;
      v = nv, cap = nc;
    }
    if (!(v[cnt] = strdup(de->d_name))) goto oom;
    cnt++;
  }
  if (errno) {
    int err = errno;
    closedir(d);
    mm_dir_free(v, cnt);
    return mm_errorf(e, MM_EIO, "%s: cannot list the folder: %s", path, strerror(err));
  }
  closedir(d);
  *names = v;
  *n = cnt;
  return MM_OK;
oom:
  closedir(d);
  mm_dir_free(v, cnt);
  return mm_errorf(e, MM_ENOMEM, "%s: out of memory listing the folder", path);
}
