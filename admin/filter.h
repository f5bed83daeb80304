/* SPDX-License-Identifier: ISC */
/*
 * filter: which queued messages an API call is about.  Criteria, all of
 * which must hold:
 *   state       one or more queue states, separated by commas;
 *   sender      a substring of the envelope sender (case-insensitive),
 *               or "re:" and a PCRE2 pattern;
 *   recipient   the same, against any recipient still to be delivered;
 *   domain      the domain of such a recipient, exactly (case-insensitive);
 *   older_than  arrived longer ago than a time ("90s", "2h", "3d").
 */
#ifndef TERN_FILTER_H
#define TERN_FILTER_H

#include <stdint.h>

#include "queue/envelope.h"

typedef struct filter filter_t;

/* A filter that matches everything. */
filter_t *filter_new(void);

/* Nonzero if name is one of the criteria above. */
int filter_known(const char *name);

/* Set criterion name from value.  Returns 0, or -1 with *why set
 * (caller frees) when the value is not valid. */
int filter_set(filter_t *f, const char *name, const char *value, char **why);

/* Nonzero if no criterion is set. */
int filter_empty(const filter_t *f);

/* Nonzero if env (NULL for a record that does not decode, which counts
 * as state corrupt with no sender or recipients) matches at now_us. */
int filter_match(const filter_t *f, const envelope_t *env, int64_t now_us);

/* Free a filter; accepts NULL. */
void filter_free(filter_t **fp);

#endif
