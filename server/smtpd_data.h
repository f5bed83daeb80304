/* SPDX-License-Identifier: ISC */
/*
 * smtpd_data: the readers of message content, DATA (RFC 5321 section
 * 4.1.1.4) and BDAT chunks (RFC 3030), apart from the session so that
 * they can be fuzzed: bytes in, message lines with LF endings out.
 */
#ifndef TERN_SMTPD_DATA_H
#define TERN_SMTPD_DATA_H

#include <stddef.h>

#include "lib/buf.h"

/* Receives message text: len bytes, then a line end if newline is set. */
typedef void (*smtpd_data_fn)(void *arg, const char *p, size_t len,
                              int newline);

struct smtpd_data_reader {
    int prev_crlf; /* the previous line ended in CRLF */
    int mid_line;  /* part of a long line has been passed on */
};

struct smtpd_bdat_reader {
    int cr; /* the previous chunk ended in CR */
};

/* Begin reading DATA (just after the 354). */
void smtpd_data_begin(struct smtpd_data_reader *r);

/* Take what in holds of the message, consuming it; lines longer than
 * chunk bytes are passed on in parts.  Returns 1 once CRLF "." CRLF has
 * been consumed (the end of the message), else 0 (more input needed). */
int smtpd_data_feed(struct smtpd_data_reader *r, buf_t *in, size_t chunk,
                    smtpd_data_fn fn, void *arg);

/* Begin a BDAT transaction. */
void smtpd_bdat_begin(struct smtpd_bdat_reader *r);

/* Pass on len bytes of a chunk with CRLF and bare CR made line ends. */
void smtpd_bdat_feed(struct smtpd_bdat_reader *r, const char *p, size_t len,
                     smtpd_data_fn fn, void *arg);

/* The last chunk is in: pass on a CR still held back. */
void smtpd_bdat_end(struct smtpd_bdat_reader *r, smtpd_data_fn fn,
                    void *arg);

#endif
