/* SPDX-License-Identifier: ISC */
/*
 * smtpd_parse: command parsing.  Verbs are matched case-insensitively
 * (RFC 5321 section 2.4).  Paths follow section 4.1.2: an optional
 * source route, which section 4.1.1.3 says to accept and ignore, then a
 * Mailbox of Local-part "@" Domain or address-literal.  Octets above
 * 127 are allowed in local parts and domains as RFC 6531 allows; the
 * session decides whether the client may send them.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/envelope.h"
#include "server/smtpd_parse.h"

static const struct {
    const char *name;
    enum smtp_verb verb;
} smtpd_verbs[] = {
    {"HELO", SMTP_HELO}, {"EHLO", SMTP_EHLO},
    {"MAIL", SMTP_MAIL}, {"RCPT", SMTP_RCPT},
    {"DATA", SMTP_DATA}, {"RSET", SMTP_RSET},
    {"NOOP", SMTP_NOOP}, {"QUIT", SMTP_QUIT},
    {"VRFY", SMTP_VRFY}, {"EXPN", SMTP_EXPN},
    {"HELP", SMTP_HELP}, {"STARTTLS", SMTP_STARTTLS},
    {"AUTH", SMTP_AUTH}, {"BDAT", SMTP_BDAT},
};

int
smtpd_parse_command(char *line, struct smtp_cmd *cmd)
{
    size_t vlen = strcspn(line, " ");
    size_t i;

    cmd->verb = SMTP_UNKNOWN;
    cmd->name = "";
    cmd->arg = line + vlen;
    for (i = 0; i < sizeof(smtpd_verbs) / sizeof(smtpd_verbs[0]); i++) {
        if (strlen(smtpd_verbs[i].name) == vlen &&
            strncasecmp(line, smtpd_verbs[i].name, vlen) == 0) {
            cmd->verb = smtpd_verbs[i].verb;
            cmd->name = smtpd_verbs[i].name;
            break;
        }
    }
    if (*cmd->arg == ' ')
        *cmd->arg++ = '\0';
    /* Trailing white space is not part of the argument. */
    for (i = strlen(cmd->arg); i > 0 && cmd->arg[i - 1] == ' '; i--)
        cmd->arg[i - 1] = '\0';
    return 0;
}

const char *
smtpd_verb_name(enum smtp_verb verb)
{
    static const char *names[] = {
        "unknown", "helo", "ehlo", "mail", "rcpt", "data", "rset", "noop",
        "quit",    "vrfy", "expn", "help", "starttls", "auth", "bdat",
    };

    return names[verb];
}

/* atext of RFC 5322 section 3.2.3, plus 8-bit octets (RFC 6531). */
static int
smtpd_atext(unsigned char c)
{
    return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c);
}

static int
smtpd_valid_local(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return 0;
    if (s[0] == '"') {
        if (len < 2 || s[len - 1] != '"')
            return 0;
        for (i = 1; i + 1 < len; i++) {
            unsigned char c = (unsigned char)s[i];

            if (c == '\\') {
                if (i + 2 >= len || s[i + 1] < 32 || s[i + 1] > 126)
                    return 0;
                i++;
            } else if (c == '"' || (c < 32 && c != '\t') || c == 127) {
                return 0;
            }
        }
        return 1;
    }
    /* Dot-string: atoms separated by single dots. */
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == len - 1 || s[i - 1] == '.')
                return 0;
        } else if (!smtpd_atext((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int
smtpd_valid_domain(const char *s, size_t len)
{
    size_t i;
    size_t label = 0;

    if (len == 0 || len > 255)
        return 0;
    if (s[0] == '[') {
        if (s[len - 1] != ']' || len < 3)
            return 0;
        for (i = 1; i + 1 < len; i++)
            if (!isalnum((unsigned char)s[i]) && !strchr(".:-", s[i]))
                return 0;
        return 1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum(c) || c >= 0x80 || (c == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    /* A trailing dot would be an empty last label. */
    return label > 0 && s[len - 1] != '-';
}

int
smtpd_valid_mailbox(const char *s, size_t len)
{
    size_t at;

    for (at = len; at > 0 && s[at - 1] != '@'; at--)
        ;
    if (at == 0)
        return 0;
    return smtpd_valid_local(s, at - 1) &&
           smtpd_valid_domain(s + at, len - at);
}

/* Skip a source route "@a,@b:" at the front of a path. */
static char *
smtpd_skip_route(char *p)
{
    char *colon;

    if (*p != '@')
        return p;
    colon = strchr(p, ':');
    if (colon == NULL)
        return p;
    return colon + 1;
}

/* Split the ESMTP parameters after the path. */
static int
smtpd_parse_params(char *p, struct smtp_path *path, const char **why)
{
    while (*p) {
        struct smtp_param *prm;
        char *eq;
        char *q;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        if (path->nparams == SMTP_PARAMS_MAX) {
            *why = "too many parameters";
            return -1;
        }
        prm = &path->params[path->nparams++];
        prm->key = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = '\0';
        eq = strchr(prm->key, '=');
        prm->value = NULL;
        if (eq) {
            *eq = '\0';
            prm->value = eq + 1;
        }
        if (prm->key[0] == '\0') {
            *why = "empty parameter name";
            return -1;
        }
        for (q = prm->key; *q; q++) {
            if (!isalnum((unsigned char)*q) && *q != '-') {
                *why = "bad parameter name";
                return -1;
            }
            *q = (char)toupper((unsigned char)*q);
        }
    }
    return 0;
}

int
smtpd_parse_path(char *arg, const char *prefix, int null_ok,
                 struct smtp_path *path, const char **why)
{
    size_t plen = strlen(prefix);
    char *p;
    char *end;
    char *addr;
    size_t len;

    path->addr = NULL;
    path->nparams = 0;
    if (strncasecmp(arg, prefix, plen) != 0) {
        *why = "missing FROM: or TO:";
        return -1;
    }
    p = arg + plen;
    /* Many clients put a space after the colon; Postfix takes it too. */
    while (*p == ' ')
        p++;
    if (*p != '<') {
        *why = "address must be in angle brackets";
        return -1;
    }
    /* The closing bracket is the first '>' outside a quoted string. */
    for (end = p + 1; *end && *end != '>'; end++) {
        if (*end == '"') {
            for (end++; *end && *end != '"'; end++)
                if (*end == '\\' && end[1])
                    end++;
            if (*end == '\0')
                break;
        }
    }
    if (*end != '>') {
        *why = "missing '>' after the address";
        return -1;
    }
    *end = '\0';
    if (end[1] != '\0' && end[1] != ' ') {
        *why = "text after the address";
        return -1;
    }
    addr = smtpd_skip_route(p + 1);
    len = strlen(addr);
    if (len == 0) {
        if (!null_ok) {
            *why = "empty address";
            return -1;
        }
    } else if (!smtpd_valid_mailbox(addr, len) &&
               !(strchr(addr, '@') == NULL &&
                 strcasecmp(addr, "postmaster") == 0)) {
        *why = "bad address syntax";
        return -1;
    }
    if (len > 254) {
        *why = "address too long";
        return -1;
    }
    path->addr = addr;
    return smtpd_parse_params(end + 1, path, why);
}

static int
smtpd_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* RFC 3461 section 4: upper-case hex only */
}

int
smtpd_parse_xtext(const char *in, buf_t *out)
{
    const unsigned char *p = (const unsigned char *)in;

    for (; *p; p++) {
        if (*p == '+') {
            int hi = smtpd_hex(p[1]);
            int lo = hi < 0 ? -1 : smtpd_hex(p[2]);

            if (lo < 0)
                return -1;
            buf_putc(out, hi * 16 + lo);
            p += 2;
        } else if (*p >= '!' && *p <= '~' && *p != '=') {
            buf_putc(out, *p);
        } else {
            return -1;
        }
    }
    return 0;
}

int
smtpd_parse_notify(const char *value)
{
    const char *p = value;
    int bits = 0;

    if (strcasecmp(value, "NEVER") == 0)
        return DSN_NOTIFY_NEVER;
    while (*p) {
        size_t len = strcspn(p, ",");

        if (len == 7 && strncasecmp(p, "SUCCESS", 7) == 0)
            bits |= DSN_NOTIFY_SUCCESS;
        else if (len == 7 && strncasecmp(p, "FAILURE", 7) == 0)
            bits |= DSN_NOTIFY_FAILURE;
        else if (len == 5 && strncasecmp(p, "DELAY", 5) == 0)
            bits |= DSN_NOTIFY_DELAY;
        else
            return -1;
        p += len;
        if (*p == ',' && *++p == '\0')
            return -1;
    }
    return bits ? bits : -1;
}

int
smtpd_parse_bdat(const char *arg, long long *size, int *last)
{
    char *end;
    long long n;

    if (!isdigit((unsigned char)*arg))
        return -1;
    errno = 0;
    n = strtoll(arg, &end, 10);
    if (errno != 0 || n < 0)
        return -1;
    *last = 0;
    if (*end == ' ') {
        while (*end == ' ')
            end++;
        if (strcasecmp(end, "LAST") != 0)
            return -1;
        *last = 1;
    } else if (*end != '\0') {
        return -1;
    }
    *size = n;
    return 0;
}

