/* SPDX-License-Identifier: ISC */
/*
 * mailq: the queue listing in Postfix's formats, asked of the running
 * ternd over its admin API: mailq (sendmail -bp, postqueue -p) text, or
 * postqueue -j's JSON, one object a line.  Also the flush that
 * sendmail -q and postqueue -f ask for.  Programs link libternctl.a,
 * libtern.a and libcurl ($(CLIENT_LIBS) in Makefile.am).
 */
#ifndef TERN_MAILQ_H
#define TERN_MAILQ_H

#include <stdio.h>

#include "lib/config.h"

/* Print the queue of the ternd cfg describes to out: Postfix's text,
 * or with json set one JSON object per message and line.  prog names
 * the program in messages on stderr.  Returns an exit status: 0, 69
 * (EX_UNAVAILABLE) when ternd is not running, 75 (EX_TEMPFAIL) on
 * another error. */
int mailq_print(const config_t *cfg, const char *prog, int json, FILE *out);

/* Ask that ternd try deferred mail now (domain NULL for all).  Returns
 * an exit status as mailq_print does. */
int mailq_flush(const config_t *cfg, const char *prog, const char *domain);

/* The mailq program: mailq [-C FILE] [-j] [-q] [-v]. */
int mailq_main(int argc, char **argv);

#endif
