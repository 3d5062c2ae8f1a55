/* table.h - manifests read one row at a time: TSV and CSV.
 *
 * A manifest of any size is read through one buffer (1 MB, grown only for a
 * row longer than that, up to MM_TABLE_MAX_ROW), so memory does not depend on
 * the file. The caller names the columns it wants when it opens the file and
 * then reads their values row by row; the other fields are skipped.
 *
 * Formats (the rules of mmfuse's manifests, as lua/mmfuse/data.lua reads them):
 *  - TSV: the first line is the header; fields are separated by tabs, no
 *    quoting; a line ends at \n (a \r before it is dropped); empty lines are
 *    skipped; every row must have as many fields as the header.
 *  - CSV (RFC 4180): fields separated by commas; a field that starts with a
 *    quote is quoted: "" inside it is one quote, and it may hold commas and
 *    line breaks; after the closing quote comes a comma or the end of the
 *    row; a quote inside an unquoted field is an error; rows end at \n, \r\n
 *    or \r; blank rows are skipped; the first row is the header.
 * A UTF-8 byte order mark at the start of the file is skipped.
 *
 * Errors name the file and the line where the row starts ("x.tsv:12:
 * expected 4 fields, got 3"). A malformed row leaves the reader on the next
 * row, so a caller may skip it and go on, except where the rest of the file
 * cannot be read as rows (a CSV quote that never closes, an I/O error, a row
 * longer than the limit): mm_table_broken() then says so.
 */
#ifndef MM_TABLE_H
#define MM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

enum { MM_TABLE_TSV = 0, MM_TABLE_CSV, MM_TABLE_FORMATS };
/* their names by value ("tsv", "csv"), NULL-terminated */
extern const char *const mm_table_format_names[];

#define MM_TABLE_MAX_ROW ((size_t)64 << 20)

typedef struct mm_table mm_table; /* opaque */

/* The format a path's extension names: .csv CSV; anything else TSV. */
int mm_table_format_of(const char *path);

/* Open path and find the ncols columns `cols` in the header (one that is
 * not there is an error naming the file and listing the columns it has);
 * cols = NULL: every column, in the header's order. */
mm_table *mm_table_open(const char *path, int format, const char *const *cols, int ncols, mm_err *e);
/* the wanted columns' names (with cols = NULL: the header) */
const char *const *mm_table_columns(const mm_table *t, int *n);
void mm_table_close(mm_table *t);

/* The next row: *got = 1 and the values are readable until the next call,
 * or *got = 0 at the end of the file. A malformed row: MM_EFORMAT and its
 * message; the reader then stands on the next row unless mm_table_broken. */
int mm_table_next(mm_table *t, int *got, mm_err *e);
/* the value of wanted column i of the current row (never NULL; empty when
 * absent); its length in *len */
const char *mm_table_value(const mm_table *t, int i, size_t *len);
/* the line where the current row starts (1-based, counting every line) */
int64_t mm_table_line(const mm_table *t);
/* the rest of the file cannot be read as rows */
int mm_table_broken(const mm_table *t);
const char *mm_table_path(const mm_table *t);

#endif
