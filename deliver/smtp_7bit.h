/* SPDX-License-Identifier: ISC */
/*
 * smtp_7bit: a message with 8-bit content made 7-bit for a server that
 * does not offer 8BITMIME (RFC 6152 section 3), as Postfix's MIME
 * output conversion does.
 */
#ifndef TERN_SMTP_7BIT_H
#define TERN_SMTP_7BIT_H

#include <stddef.h>

#include "lib/buf.h"

/* Nonzero if the len bytes at msg hold a byte above 127. */
int smtp_7bit_needed(const char *msg, size_t len);

/* Append to out the message msg (LF line ends, as stored) with every
 * body part that has 8-bit content and a 7bit, 8bit or no
 * Content-Transfer-Encoding re-encoded as quoted-printable, and 8bit
 * declared on multiparts and attached messages turned into 7bit.  A
 * message without MIME headers is taken as one text/plain part, as RFC
 * 2045 section 5.2 says; then MIME-Version: and a Content-Type: are
 * added.  Headers and binary parts are left as they are.  Returns the
 * number of parts re-encoded. */
size_t smtp_7bit_convert(const char *msg, size_t len, buf_t *out);

#endif
