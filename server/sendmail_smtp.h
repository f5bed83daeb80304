/* SPDX-License-Identifier: ISC */
/*
 * sendmail_smtp: "sendmail -bs", an SMTP dialogue on standard input and
 * output whose messages go into the maildrop directory.
 */
#ifndef TERN_SENDMAIL_SMTP_H
#define TERN_SENDMAIL_SMTP_H

#include "lib/config.h"

/* Who is submitting, and where the files go. */
struct sendmail_smtp_who {
    long uid;             /* the real uid */
    const char *user;     /* its login name */
    const char *maildrop; /* the maildrop directory */
};

/* Serve one SMTP session on file descriptors in and out until QUIT or
 * the end of input.  Returns 0, or -1 if the output could not be
 * written. */
int sendmail_smtp_run(const config_t *cfg, const struct sendmail_smtp_who *who,
                      int in, int out);

#endif
