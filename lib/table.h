/* SPDX-License-Identifier: ISC */
/*
 * table: lookup tables, one interface for every caller, named as in
 * Postfix by "type:name":
 *   static:value       every key finds value;
 *   inline:{k=v, k2}   a small table written in the parameter itself;
 *   texthash:/path     an exact-match text file, "key value" per line,
 *                      read into memory when opened ("/path" alone means
 *                      the same).
 * Keys are matched case-insensitively, as Postfix folds keys to lower
 * case.  A table is immutable once opened; it is safe to look it up from
 * many threads.
 */
#ifndef TERN_TABLE_H
#define TERN_TABLE_H

#include "lib/buf.h"

typedef struct table table_t;

/* Open the table named by spec.  Returns NULL and appends a message to
 * err (naming file:line for a bad line) if it cannot be opened. */
table_t *table_open(const char *spec, buf_t *err);

/* Look up key.  Returns 1 and sets *value (owned by the table, valid
 * until table_free) when found, 0 when not found. */
int table_lookup(const table_t *t, const char *key, const char **value);

/* The spec the table was opened with. */
const char *table_name(const table_t *t);

/* Free a table; accepts NULL and *tp == NULL. */
void table_free(table_t **tp);

#endif
