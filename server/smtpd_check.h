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
 * Evaluation only reads the config and the context (and writes the
 * context's acts), so any number of threads may check at once, each
 * with its own acts.  Lists for which smtpd_check_needs_dns() or
 * smtpd_check_needs_policy() is true block on the network and belong
 * on a worker thread.
 */
#ifndef TERN_SMTPD_CHECK_H
#define TERN_SMTPD_CHECK_H

#include "lib/buf.h"
#include "lib/config.h"
#include "server/smtpd_policy.h"

struct sockaddr;

/* What a command's restrictions leave besides their result: replies
 * that wait for the end of every list (DEFER_IF_PERMIT, DEFER_IF_REJECT)
 * and actions on the whole message (HOLD, DISCARD, REDIRECT, PREPEND).
 * smtpd_check_acts_init it before the first list, smtpd_check_finish
 * after the last, smtpd_check_acts_free it when done. */
struct smtpd_check_acts {
    buf_t defer_if_permit; /* the reply, or empty */
    buf_t defer_if_reject; /* the reply, or empty */
    buf_t prepend;         /* header lines, each ending in "\n" */
    char *redirect;        /* the last REDIRECT address, owned, or NULL */
    char *filter;          /* the last FILTER transport:nexthop, or NULL */
    char *bcc;             /* the last BCC address, or NULL */
    int hold;
    int discard;
};

/* What the session knows when it asks; NULL for what it does not know
 * yet.  A restriction that needs a missing field says nothing. */
struct smtpd_check_ctx {
    const config_t *cfg;
    const struct sockaddr *client_sa;
    const char *client_addr; /* numeric, without brackets */
    const char *client_name; /* verified name, NULL or "unknown" if none */
    const char *reverse_client_name; /* its PTR name, NULL or "unknown" */
    int client_name_status;  /* DNS_OK, DNS_NOTFOUND or DNS_RETRY */
    const char *helo;
    const char *sender;      /* "" for the null sender */
    const char *rcpt;
    const char *sasl_user;   /* NULL if not authenticated */
    int in_mynetworks;
    /* For the log and for check_policy_service's attributes. */
    const char *queue_id;    /* NULL or "" before the first recipient */
    const char *protocol;    /* "SMTP" or "ESMTP" */
    const char *sasl_method;
    const char *instance;    /* the same for each command of a message */
    long long size;          /* MAIL SIZE=, or 0 */
    const struct sockaddr *server_sa; /* the address the client reached */
    const char *tls_protocol; /* NULL without TLS */
    const char *tls_cipher;
    int tls_bits;
    /* The policy client; NULL makes check_policy_service take
     * smtpd_policy_service_default_action without asking. */
    smtpd_policy_t *policy;
    /* Where the actions that outlast one list go (written, though the
     * context is const); NULL keeps them within each smtpd_check. */
    struct smtpd_check_acts *acts;
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

/* Nonzero if evaluating list may query a policy server
 * (check_policy_service), which may take smtpd_policy_service_timeout
 * and more. */
int smtpd_check_needs_policy(const config_t *cfg, enum param_id list);

void smtpd_check_acts_init(struct smtpd_check_acts *acts);

/* Free what acts holds; it may be initialised again. */
void smtpd_check_acts_free(struct smtpd_check_acts *acts);

/* After the last list of a command: rc and reply are what the lists
 * (and any check of the caller's own) gave.  A REJECT with a 5xx reply
 * becomes the DEFER_IF_REJECT reply if there is one; anything else
 * becomes the DEFER_IF_PERMIT reply if there is one.  Returns the
 * result, with reply to match. */
int smtpd_check_finish(const struct smtpd_check_acts *acts, int rc,
                       buf_t *reply);

/* Add the message actions of src (an accepted recipient's) to dst (the
 * transaction's): prepended headers in order, HOLD and DISCARD, the
 * last REDIRECT.  src keeps its deferrals. */
void smtpd_check_acts_merge(struct smtpd_check_acts *dst,
                            struct smtpd_check_acts *src);

/* Log an outcome in Postfix's shape: "QUEUEID: whatsup: VERB from
 * name[addr]: text; from=<sender> to=<rcpt> proto=P helo=<helo>", with
 * NOQUEUE for a missing queue ID and from= and to= only when known.
 * Text from the network is escaped. */
void smtpd_check_log(const struct smtpd_check_ctx *ctx, const char *whatsup,
                     const char *verb, const char *text);

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
