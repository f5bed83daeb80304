/* SPDX-License-Identifier: ISC */
/*
 * smtpd_milter: the MTA side of the Sendmail Milter protocol (version 6,
 * as libmilter speaks it and Postfix's MILTER_README describes), for
 * smtpd_milters.
 *
 * On the wire every packet is a 4-byte big-endian length, then a command
 * or reply byte and its data (the length counts both).  The codec here
 * (smtpd_milter_packet, smtpd_milter_take, smtpd_milter_parse) is pure
 * and has its unit tests and fuzz target; the conversation
 * (smtpd_milters_*) blocks its thread on sockets and so runs only on
 * the milter job pool of server/smtpd_session.c, one step of a session
 * at a time, never on an I/O thread.  Every wait goes through
 * server/smtpd_policy's socket steps, bounded by milter_connect_timeout,
 * milter_command_timeout or milter_content_timeout, and ends at once
 * when smtpd_policy_stop is called.
 *
 * A Milter that cannot be reached, times out, or answers out of turn or
 * with garbage is closed and gets milter_default_action: accept (it is
 * not asked again in the session), tempfail or reject (every later
 * MAIL, RCPT and message of the session gets 451 4.7.1 or 550 5.7.1),
 * quarantine (like accept, and the session's messages are held).
 */
#ifndef TERN_SMTPD_MILTER_H
#define TERN_SMTPD_MILTER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "queue/cleanup_edit.h"
#include "server/smtpd_policy.h"

/* Steps run on a pool of this many threads. */
#define SMTPD_MILTER_CONCURRENCY 16

/* The most a packet may hold (Postfix's limit is smaller; a body
 * replacement comes in many packets). */
#define SMTPD_MILTER_PACKET_MAX (1024 * 1024)

/* Body chunks sent to a Milter are at most this long (libmilter's
 * MILTER_CHUNK_SIZE). */
#define SMTPD_MILTER_CHUNK 65535

/* Commands (MTA to Milter). */
#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'

/* Replies (Milter to MTA). */
#define SMFIR_ADDRCPT '+'
#define SMFIR_DELRCPT '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN '4'
#define SMFIR_ACCEPT 'a'
#define SMFIR_REPLBODY 'b'
#define SMFIR_CONTINUE 'c'
#define SMFIR_DISCARD 'd'
#define SMFIR_CHGFROM 'e'
#define SMFIR_CONN_FAIL 'f'
#define SMFIR_ADDHEADER 'h'
#define SMFIR_INSHEADER 'i'
#define SMFIR_CHGHEADER 'm'
#define SMFIR_PROGRESS 'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT 'r'
#define SMFIR_SKIP 's'
#define SMFIR_TEMPFAIL 't'
#define SMFIR_REPLYCODE 'y'

/* Actions a Milter may take (OPTNEG). */
#define SMFIF_ADDHDRS 0x01
#define SMFIF_CHGBODY 0x02
#define SMFIF_ADDRCPT 0x04
#define SMFIF_DELRCPT 0x08
#define SMFIF_CHGHDRS 0x10
#define SMFIF_QUARANTINE 0x20
#define SMFIF_CHGFROM 0x40
#define SMFIF_ADDRCPT_PAR 0x80
#define SMFIF_SETSYMLIST 0x100

/* Protocol steps a Milter may leave out (SMFIP_NO*) or not answer
 * (SMFIP_NR_*), OPTNEG. */
#define SMFIP_NOCONNECT 0x01
#define SMFIP_NOHELO 0x02
#define SMFIP_NOMAIL 0x04
#define SMFIP_NORCPT 0x08
#define SMFIP_NOBODY 0x10
#define SMFIP_NOHDRS 0x20
#define SMFIP_NOEOH 0x40
#define SMFIP_NR_HDR 0x80
#define SMFIP_NOUNKNOWN 0x100
#define SMFIP_NODATA 0x200
#define SMFIP_SKIP 0x400
#define SMFIP_RCPT_REJ 0x800
#define SMFIP_NR_CONN 0x1000
#define SMFIP_NR_HELO 0x2000
#define SMFIP_NR_MAIL 0x4000
#define SMFIP_NR_RCPT 0x8000
#define SMFIP_NR_DATA 0x10000
#define SMFIP_NR_UNKN 0x20000
#define SMFIP_NR_EOH 0x40000
#define SMFIP_NR_BODY 0x80000
#define SMFIP_HDR_LEADSPC 0x100000

/* Append one packet (length, cmd, data) to out. */
void smtpd_milter_packet(buf_t *out, int cmd, const void *data, size_t len);

/* Take the packet at the front of in: returns 1 and consumes it, with
 * its command in *cmd and its data in data (reset first); 0 when in
 * holds no complete packet yet; -1 with why when the length is 0 or
 * above SMTPD_MILTER_PACKET_MAX (the stream cannot be followed). */
int smtpd_milter_take(buf_t *in, int *cmd, buf_t *data, const char **why);

/* A reply, its strings pointing into the data it was parsed from. */
struct smtpd_milter_reply {
    int cmd;
    uint32_t index;    /* SMFIR_INSHEADER, SMFIR_CHGHEADER */
    const char *name;  /* header name, address or quarantine reason */
    const char *value; /* header value, or ESMTP arguments, or NULL */
    const char *text;  /* SMFIR_REPLYCODE: "550 5.7.1 text" */
    const char *body;  /* SMFIR_REPLBODY bytes */
    size_t body_len;
    uint32_t version;  /* SMFIC_OPTNEG */
    uint32_t actions;
    uint32_t protocol;
};

/* Parse the data of a reply packet.  Returns 0, or -1 with why for an
 * unknown reply or one whose data does not fit it (a string without
 * its NUL, a header name that is empty or not a field name, a
 * REPLYCODE that is not a 4xx or 5xx reply). */
int smtpd_milter_parse(int cmd, const char *data, size_t len,
                       struct smtpd_milter_reply *r, const char **why);

/* What the session knows, for the events and their macros; NULL for
 * what it does not know. */
struct smtpd_milter_info {
    const char *client_name; /* "unknown" without DNS */
    const char *client_addr;
    int client_port;
    int family;              /* AF_INET, AF_INET6 or 0 */
    const char *server_addr;
    int server_port;
    const char *helo;
    const char *queue_id;
    const char *sender;
    const char *rcpt;
    const char *sasl_method;
    const char *sasl_user;
    const char *tls_version;
    const char *tls_cipher;
    int tls_bits;
    const char *const *mail_args; /* ESMTP arguments of MAIL or RCPT */
    size_t nargs;
};

/* What an event decided. */
enum smtpd_milter_verdict {
    SMTPD_MILTER_CONTINUE, /* go on */
    SMTPD_MILTER_REJECT,   /* refuse with the reply (4xx or 5xx) */
    SMTPD_MILTER_DISCARD,  /* accept the message and throw it away */
};

typedef struct smtpd_milters smtpd_milters_t;

/* The Milters of names (smtpd_milters, NULL-terminated) for one
 * session, none connected yet; NULL when there are none.  io provides
 * the waits. */
smtpd_milters_t *smtpd_milters_new(const config_t *cfg, char *const *names,
                                   smtpd_policy_t *io);

/* Say QUIT to each connected Milter (without waiting) and free *mp;
 * accepts NULL and clears *mp. */
void smtpd_milters_free(smtpd_milters_t **mp);

/* Nonzero if some Milter is still to be asked, or an earlier failure
 * decides the session's later commands. */
int smtpd_milters_active(const smtpd_milters_t *m);

/* Give every Milter its default action without talking to it (the job
 * pool was full). */
void smtpd_milters_unavailable(smtpd_milters_t *m, const char *why);

/* The events, in session order.  Each returns a verdict, with the
 * reply for SMTPD_MILTER_REJECT in reply (reset first).  The connect
 * event opens and negotiates the connections; its reject is kept and
 * given to every later MAIL, as Postfix does. */
enum smtpd_milter_verdict smtpd_milters_connect(
    smtpd_milters_t *m, const struct smtpd_milter_info *info, buf_t *reply);
enum smtpd_milter_verdict smtpd_milters_helo(
    smtpd_milters_t *m, const struct smtpd_milter_info *info, buf_t *reply);
enum smtpd_milter_verdict smtpd_milters_mail(
    smtpd_milters_t *m, const struct smtpd_milter_info *info, buf_t *reply);
enum smtpd_milter_verdict smtpd_milters_rcpt(
    smtpd_milters_t *m, const struct smtpd_milter_info *info, buf_t *reply);

/* The message (LF line endings, as received): DATA, each header, the
 * end of the headers, the body in chunks, the end of the message.
 * What the Milters ask to change is appended to edits. */
enum smtpd_milter_verdict smtpd_milters_message(
    smtpd_milters_t *m, const struct smtpd_milter_info *info,
    const char *msg, size_t len, cleanup_edits_t *edits, buf_t *reply);

/* The transaction ended (RSET, a new HELO, a refused message): the
 * next MAIL is preceded by an ABORT for the Milters that saw it. */
void smtpd_milters_end_transaction(smtpd_milters_t *m);

/* Check the syntax of milter_default_action; 0 or -1. */
int smtpd_milter_action_valid(const char *action);

#endif
