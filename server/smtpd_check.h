/* SPDX-License-Identifier: ISC */
/*
 * smtpd_check: the SMTP server's access policy, as Postfix's restriction
 * lists: smtpd_client_restrictions, smtpd_helo_restrictions,
 * smtpd_sender_restrictions, smtpd_relay_restrictions and
 * smtpd_recipient_restrictions, each a list of restrictions tried in
 * order until one permits or rejects.  The session builds a context
 * with what it knows so far and asks about one list at a time; when a
 * list says nothing (SMTPD_CHECK_DUNNO) or permits (SMTPD_CHECK_OK) the
 * session goes on to the next one that applies, so a permit in
 * smtpd_relay_restrictions does not skip smtpd_recipient_restrictions,
 * as in Postfix.
 *
 * Evaluation only reads the config and the context, so any number of
 * threads may check at once.  Lists for which smtpd_check_needs_dns()
 * is true block on DNS lookups and belong on a worker thread.
 */
#ifndef TERN_SMTPD_CHECK_H
#define TERN_SMTPD_CHECK_H

#include "lib/buf.h"
#include "lib/config.h"

struct sockaddr;

/* What the session knows when it asks; NULL for what it does not know
 * yet.  A restriction that needs a missing field says nothing. */
struct smtpd_check_ctx {
    const config_t *cfg;
    const struct sockaddr *client_sa;
    const char *client_addr; /* numeric, without brackets */
    const char *client_name; /* verified name, NULL or "unknown" if none */
    const char *helo;
    const char *sender;      /* "" for the null sender */
    const char *rcpt;
    const char *sasl_user;   /* NULL if not authenticated */
    int in_mynetworks;
};

/* Results of smtpd_check(). */
enum {
    SMTPD_CHECK_DUNNO = 0,  /* no decision: go on */
    SMTPD_CHECK_OK = 1,     /* permitted by this list */
    SMTPD_CHECK_REJECT = 2, /* rejected or deferred: reply holds why */
};

/* Evaluate restriction list (one of the five PT_RESTRICTIONS ids) for
 * ctx.  Returns SMTPD_CHECK_DUNNO, SMTPD_CHECK_OK or SMTPD_CHECK_REJECT;
 * for a reject, reply (reset first; the caller owns it) holds the whole
 * reply line without CRLF, "554 5.7.1 <x@y>: Relay access denied", with
 * a 4xx code when the client should try again later. */
int smtpd_check(const struct smtpd_check_ctx *ctx, enum param_id list,
                buf_t *reply);

/* Nonzero if evaluating list may query the DNS (reject_rbl_client,
 * reject_unknown_sender_domain, reject_unknown_recipient_domain). */
int smtpd_check_needs_dns(const config_t *cfg, enum param_id list);

/* The config_check_fn of the restriction lists: appends to err, one per
 * line, unknown restriction names, missing arguments, bad DNSBL zones,
 * and (for smtpd_recipient_restrictions) the open relay that an empty
 * smtpd_relay_restrictions would leave.  Returns nothing. */
void smtpd_check_validate(const config_t *cfg, enum param_id id,
                          buf_t *err);

/* Register smtpd_check_validate for the five lists with
 * config_register_check(); call before the first config_load(). */
void smtpd_check_register(void);

#endif
