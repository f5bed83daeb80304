/* SPDX-License-Identifier: ISC */
/*
 * table: lookup tables, one interface for every caller, named as in
 * Postfix by "type:name":
 *   static:value       every key finds value;
 *   inline:{k=v, k2}   a small table written in the parameter itself;
 *   texthash:/path     an exact-match text file, "key value" per line,
 *                      read into memory when opened ("/path" alone means
 *                      the same);
 *   hash:/path, btree:/path, lmdb:/path
 *                      Postfix's indexed tables: /path is the source
 *                      file that postmap would compile, and tern reads
 *                      it as texthash does, so no .db file is built;
 *                      "ternctl map query" tests a lookup;
 *   pcre:/path         "/pattern/flags result" rules tried in order, as
 *                      in Postfix's pcre_table(5), with "!/pattern/",
 *                      nested "if /pattern/" ... "endif" blocks and $1..$9
 *                      in results, compiled with PCRE2;
 *   regexp:/path       the same rules in the shape of Postfix's
 *                      regexp_table(5), also compiled with PCRE2 (table.c
 *                      says where that differs from POSIX regcomp).
 * The keys of the fixed types are matched case-insensitively, as Postfix
 * folds keys to lower case; pattern tables get the key as it is, and the
 * pattern's i flag (on by default) decides.  A table is immutable once
 * opened; it is safe to look it up from many threads.
 */
#ifndef TERN_TABLE_H
#define TERN_TABLE_H

#include "lib/buf.h"

typedef struct table table_t;

/* Open the table named by spec.  Returns NULL and appends a message to
 * err (naming file:line for a bad line) if it cannot be opened. */
table_t *table_open(const char *spec, buf_t *err);

/* Look up key.  Returns 1 and sets *value when found, 0 when not found.
 * For the fixed types *value is owned by the table and valid until
 * table_free; for pcre: and regexp: tables it is the substituted result
 * in a buffer of the calling thread, valid until that thread's next
 * table_lookup.  Callers that keep the value use table_lookup_r. */
int table_lookup(const table_t *t, const char *key, const char **value);

/* Look up key in a table of any type.  Returns 1 and appends the result
 * to result (the caller's buffer) when found, 0 when not found, leaving
 * result as it was. */
int table_lookup_r(const table_t *t, const char *key, buf_t *result);

/* Nonzero for pcre: and regexp: tables, which match the whole key
 * against patterns: callers that would also try parts of a key (parent
 * domains, shorter networks) ask a pattern table only the whole key. */
int table_is_pattern(const table_t *t);

/* The spec the table was opened with. */
const char *table_name(const table_t *t);

/* Free a table; accepts NULL and *tp == NULL. */
void table_free(table_t **tp);

#endif
