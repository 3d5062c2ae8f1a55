/* dir.h - the names in a folder (readdir), for importers that look for the
 * files of a folder of posts. Only names are read: nothing is opened but
 * the folder itself. */
#ifndef MM_IO_DIR_H
#define MM_IO_DIR_H

#include <stdint.h>

#include "../core/error.h"

/* The entry names of folder path ("." and ".." left out), in no particular
 * order: *names is a malloc'd array of *n malloc'd strings; free it with
 * mm_dir_free. A path that is not a folder is MM_EIO naming it. */
int mm_dir_list(const char *path, char ***names, int64_t *n, mm_err *e);
void mm_dir_free(char **names, int64_t n);

#endif
