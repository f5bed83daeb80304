/* SPDX-License-Identifier: ISC */
/*
 * cleanup_edit: header, body and envelope edits, applied in the order
 * asked.
 *
 * The header block is split into logical headers (a header line and
 * its continuation lines), edited as a list and written back; the body
 * is kept, or replaced by the edits' body with its CRLF line endings
 * turned into LF, as messages are stored.  Header names are matched
 * without regard to case (RFC 5322 section 1.2.2); a CHG_HEADER for a
 * header the message lacks adds it, as Sendmail does.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/mem.h"
#include "queue/cleanup_edit.h"

/* One logical header: its text, newlines included. */
struct cleanup_edit_hdr {
    buf_t text;
};

struct cleanup_edit_hdrs {
    struct cleanup_edit_hdr *v;
    size_t n;
    size_t cap;
};

cleanup_edits_t *
cleanup_edits_new(void)
{
    cleanup_edits_t *e = mem_calloc(1, sizeof(*e));

    e->tail = &e->head;
    buf_init(&e->body);
    return e;
}

void
cleanup_edits_free(cleanup_edits_t **ep)
{
    cleanup_edits_t *e = ep ? *ep : NULL;

    if (e == NULL)
        return;
    while (e->head) {
        struct cleanup_edit *x = e->head;

        e->head = x->next;
        free(x->name);
        free(x->value);
        free(x);
    }
    buf_free(&e->body);
    free(e->hold_reason);
    free(e);
    *ep = NULL;
}

/* A copy of s with every CRLF made an LF. */
static char *
cleanup_edit_lf(const char *s)
{
    buf_t b;

    buf_init(&b);
    for (; *s; s++)
        if (!(s[0] == '\r' && s[1] == '\n'))
            buf_putc(&b, *s);
    if (b.data == NULL)
        return mem_strdup("");
    return buf_steal(&b);
}

void
cleanup_edits_add(cleanup_edits_t *e, enum cleanup_edit_op op, size_t index,
                  const char *name, const char *value)
{
    struct cleanup_edit *x = mem_calloc(1, sizeof(*x));

    x->op = op;
    x->index = index;
    x->name = name ? mem_strdup(name) : NULL;
    x->value = value ? cleanup_edit_lf(value) : NULL;
    *e->tail = x;
    e->tail = &x->next;
}

/* Length of the header name at line, or 0 if the line is not a header
 * line ("name:" with printable non-space characters before the colon). */
static size_t
cleanup_edit_name_len(const char *line, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];

        if (c == ':')
            return i;
        if (c <= ' ' || c >= 127)
            return 0;
    }
    return 0;
}

static struct cleanup_edit_hdr *
cleanup_edit_hdr_insert(struct cleanup_edit_hdrs *h, size_t at)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->v = mem_reallocarray(h->v, h->cap, sizeof(*h->v));
    }
    if (at > h->n)
        at = h->n;
    memmove(&h->v[at + 1], &h->v[at], (h->n - at) * sizeof(*h->v));
    h->n++;
    buf_init(&h->v[at].text);
    return &h->v[at];
}

static void
cleanup_edit_hdr_remove(struct cleanup_edit_hdrs *h, size_t at)
{
    buf_free(&h->v[at].text);
    memmove(&h->v[at], &h->v[at + 1], (h->n - at - 1) * sizeof(*h->v));
    h->n--;
}

size_t
cleanup_edits_header(const char *msg, size_t len, size_t pos,
                     size_t *name_len)
{
    size_t start = pos;

    *name_len = 0;
    while (pos < len) {
        const char *nl = memchr(msg + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - msg) + 1 : len;
        size_t llen = end - pos - (nl != NULL);

        if (pos == start) {
            *name_len = cleanup_edit_name_len(msg + pos, llen);
            if (*name_len == 0)
                return 0;
        } else if (llen == 0 || (msg[pos] != ' ' && msg[pos] != '\t')) {
            break;
        }
        pos = end;
    }
    return pos - start;
}

/* Split the header block of msg into h; returns where the rest (the
 * empty line and the body, or a body without one) begins. */
static size_t
cleanup_edit_split(const buf_t *msg, struct cleanup_edit_hdrs *h)
{
    const char *p = msg->data ? msg->data : "";
    size_t pos = 0;
    size_t hlen;
    size_t name;

    while ((hlen = cleanup_edits_header(p, msg->len, pos, &name)) > 0) {
        struct cleanup_edit_hdr *x = cleanup_edit_hdr_insert(h, h->n);

        buf_append(&x->text, p + pos, hlen);
        pos += hlen;
    }
    return pos;
}

/* Nonzero if header x is called name. */
static int
cleanup_edit_is(const struct cleanup_edit_hdr *x, const char *name)
{
    size_t n = cleanup_edit_name_len(x->text.data, x->text.len);

    return n == strlen(name) && strncasecmp(x->text.data, name, n) == 0;
}

/* "name: value\n" into b; the space is left out when value has its own
 * leading white space. */
static void
cleanup_edit_format(buf_t *b, const char *name, const char *value)
{
    size_t vlen = strlen(value);

    buf_puts(b, name);
    buf_putc(b, ':');
    if (value[0] != ' ' && value[0] != '\t')
        buf_putc(b, ' ');
    buf_puts(b, value);
    if (vlen == 0 || value[vlen - 1] != '\n')
        buf_putc(b, '\n');
}

static void
cleanup_edit_header(struct cleanup_edit_hdrs *h, const struct cleanup_edit *x)
{
    size_t i;
    size_t seen = 0;
    size_t want = x->index ? x->index : 1;

    switch (x->op) {
    case CLEANUP_EDIT_ADD_HEADER:
        cleanup_edit_format(&cleanup_edit_hdr_insert(h, h->n)->text,
                            x->name, x->value);
        return;
    case CLEANUP_EDIT_INS_HEADER:
        cleanup_edit_format(&cleanup_edit_hdr_insert(h, x->index)->text,
                            x->name, x->value);
        return;
    case CLEANUP_EDIT_CHG_HEADER:
        for (i = 0; i < h->n; i++) {
            if (!cleanup_edit_is(&h->v[i], x->name) || ++seen < want)
                continue;
            if (x->value[0] == '\0') {
                cleanup_edit_hdr_remove(h, i);
                return;
            }
            buf_reset(&h->v[i].text);
            cleanup_edit_format(&h->v[i].text, x->name, x->value);
            return;
        }
        if (x->value[0] != '\0')
            cleanup_edit_format(&cleanup_edit_hdr_insert(h, h->n)->text,
                                x->name, x->value);
        return;
    default:
        return;
    }
}

void
cleanup_edits_message(const cleanup_edits_t *e, buf_t *msg)
{
    struct cleanup_edit_hdrs h = {NULL, 0, 0};
    const struct cleanup_edit *x;
    size_t rest;
    buf_t out;
    size_t i;

    rest = cleanup_edit_split(msg, &h);
    for (x = e->head; x; x = x->next)
        cleanup_edit_header(&h, x);
    buf_init(&out);
    for (i = 0; i < h.n; i++) {
        buf_append(&out, h.v[i].text.data, h.v[i].text.len);
        buf_free(&h.v[i].text);
    }
    free(h.v);
    if (!e->replace_body) {
        buf_append(&out, msg->data ? msg->data + rest : "", msg->len - rest);
    } else {
        buf_putc(&out, '\n');
        for (i = 0; i < e->body.len; i++)
            if (!(e->body.data[i] == '\r' && i + 1 < e->body.len &&
                  e->body.data[i + 1] == '\n'))
                buf_putc(&out, e->body.data[i]);
    }
    buf_free(msg);
    *msg = out;
}

/* A copy of addr without its angle brackets. */
static char *
cleanup_edit_addr(const char *addr)
{
    size_t len = strlen(addr);

    if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>')
        return mem_strndup(addr + 1, len - 2);
    return mem_strdup(addr);
}

static void
cleanup_edit_del_rcpt(envelope_t *env, const char *addr)
{
    size_t i;

    for (i = 0; i < env->nrcpt; i++) {
        rcpt_t *r = &env->rcpts[i];

        if (strcasecmp(r->addr, addr) != 0)
            continue;
        free(r->addr);
        free(r->orcpt);
        free(r->orig);
        free(r->dsn);
        free(r->reason);
        memmove(r, r + 1, (env->nrcpt - i - 1) * sizeof(*r));
        env->nrcpt--;
        i--;
    }
}

void
cleanup_edits_envelope(const cleanup_edits_t *e, envelope_t *env)
{
    const struct cleanup_edit *x;

    for (x = e->head; x; x = x->next) {
        char *addr;

        if (x->op != CLEANUP_EDIT_ADD_RCPT &&
            x->op != CLEANUP_EDIT_DEL_RCPT && x->op != CLEANUP_EDIT_CHG_FROM)
            continue;
        addr = cleanup_edit_addr(x->name);
        if (x->op == CLEANUP_EDIT_ADD_RCPT)
            envelope_add_rcpt(env, addr);
        else if (x->op == CLEANUP_EDIT_DEL_RCPT)
            cleanup_edit_del_rcpt(env, addr);
        else
            envelope_set(&env->sender, addr);
        free(addr);
    }
}
