/* SPDX-License-Identifier: ISC */
/*
 * envelope: the in-memory envelope and its JSON form in the meta column
 * family (queue/README lists the fields).
 *
 * Encoding writes one compact JSON object with "v": 1 first.  Optional
 * text fields that are NULL are left out.  JSON text must be UTF-8, and
 * a string that is not (which smtpd should have refused) has each
 * invalid byte replaced by U+FFFD, with a warning, so that encoding
 * never fails.
 *
 * Decoding trusts nothing: the bytes may be torn, truncated or written by
 * another version.  Every field is checked for type and range; the
 * required ones (id, state, sender, arrival, rcpts) must be present;
 * unknown fields are ignored, so that later versions may add fields
 * without changing "v".  A record whose "v" is greater than
 * ENVELOPE_VERSION is refused: a later version bumps it only for a change
 * that an older reader would misread.  Any failure returns NULL with one
 * line saying what was wrong, never a crash; jansson bounds the nesting
 * depth and rejects invalid UTF-8, NUL in strings and duplicate keys.
 *
 * Envelopes are not shared: the functions here keep no state and may be
 * called from any thread on envelopes that thread owns.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/utf8.h"
#include "queue/envelope.h"

#define ENVELOPE_VERSION 1

static const char *const envelope_qs_names[] = {
    [QS_INCOMING] = "incoming", [QS_ACTIVE] = "active",
    [QS_DEFERRED] = "deferred", [QS_HOLD] = "hold",
    [QS_CORRUPT] = "corrupt",
};

static const char *const envelope_rs_names[] = {
    [RCPT_PENDING] = "pending",
    [RCPT_DEFERRED] = "deferred",
    [RCPT_SENT] = "sent",
    [RCPT_BOUNCED] = "bounced",
};

static const char *const envelope_ret_names[] = {
    [DSN_RET_DEFAULT] = "default",
    [DSN_RET_FULL] = "full",
    [DSN_RET_HDRS] = "hdrs",
};

#define ENVELOPE_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define DSN_NOTIFY_ALL                                                         \
    (DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE |              \
     DSN_NOTIFY_DELAY)

/* A new empty envelope: null sender, incoming, no recipients. */
envelope_t *
envelope_new(void)
{
    envelope_t *env = mem_calloc(1, sizeof(*env));

    env->sender = mem_strdup("");
    env->state = QS_INCOMING;
    env->ret = DSN_RET_DEFAULT;
    return env;
}

static void
envelope_free_rcpt(rcpt_t *r)
{
    mem_freep(&r->addr);
    mem_freep(&r->orcpt);
    mem_freep(&r->orig);
    mem_freep(&r->dsn);
    mem_freep(&r->reason);
}

/* Free an envelope with its strings and recipients; clears *envp. */
void
envelope_free(envelope_t **envp)
{
    envelope_t *env;
    size_t i;

    if (envp == NULL || (env = *envp) == NULL)
        return;
    for (i = 0; i < env->nrcpt; i++)
        envelope_free_rcpt(&env->rcpts[i]);
    free(env->rcpts);
    free(env->sender);
    free(env->client_name);
    free(env->client_addr);
    free(env->helo);
    free(env->protocol);
    free(env->sasl_user);
    free(env->message_id);
    free(env->envid);
    free(env->reason);
    free(env->filter);
    free(env);
    *envp = NULL;
}

/* Append a pending recipient; the pointer is valid until the next add. */
rcpt_t *
envelope_add_rcpt(envelope_t *env, const char *addr)
{
    rcpt_t *r;

    if (env->nrcpt == env->rcpt_cap) {
        env->rcpt_cap = env->rcpt_cap ? env->rcpt_cap * 2 : 4;
        env->rcpts =
            mem_reallocarray(env->rcpts, env->rcpt_cap, sizeof(*env->rcpts));
    }
    r = &env->rcpts[env->nrcpt++];
    memset(r, 0, sizeof(*r));
    r->addr = mem_strdup(addr);
    r->state = RCPT_PENDING;
    return r;
}

/* Replace *field with a copy of value; value may be NULL or *field. */
void
envelope_set(char **field, const char *value)
{
    char *copy = value ? mem_strdup(value) : NULL;

    free(*field);
    *field = copy;
}

/* Count recipients that still need a delivery attempt. */
size_t
envelope_pending(const envelope_t *env)
{
    size_t i;
    size_t n = 0;

    for (i = 0; i < env->nrcpt; i++)
        if (env->rcpts[i].state == RCPT_PENDING ||
            env->rcpts[i].state == RCPT_DEFERRED)
            n++;
    return n;
}

/* Name a queue state for logs and records. */
const char *
queue_state_name(enum queue_state state)
{
    if ((size_t)state >= ENVELOPE_COUNT(envelope_qs_names))
        return "unknown";
    return envelope_qs_names[state];
}

/* Name a recipient state for logs and records. */
const char *
rcpt_state_name(enum rcpt_state state)
{
    if ((size_t)state >= ENVELOPE_COUNT(envelope_rs_names))
        return "unknown";
    return envelope_rs_names[state];
}

static const char *
envelope_ret_name(enum dsn_ret ret)
{
    if ((size_t)ret >= ENVELOPE_COUNT(envelope_ret_names))
        return envelope_ret_names[DSN_RET_DEFAULT];
    return envelope_ret_names[ret];
}

static int
envelope_lookup(const char *name, const char *const *names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

/* Parse a queue state name; 0 and *state set, or -1. */
int
queue_state_parse(const char *name, enum queue_state *state)
{
    int i = envelope_lookup(name, envelope_qs_names,
                            ENVELOPE_COUNT(envelope_qs_names));

    if (i < 0)
        return -1;
    *state = (enum queue_state)i;
    return 0;
}

/*
 * Encoding.
 */

static json_t *
envelope_jstring(const envelope_t *env, const char *key, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    json_t *j;
    buf_t b;
    size_t n;

    if ((j = json_string(s)) != NULL)
        return j;

    /* json_string() also fails on exhausted memory; the copy below then
     * fails too and is reported as such. */
    msg_warn("%s: %s is not valid UTF-8; invalid bytes replaced", env->id, key);
    buf_init(&b);
    while (*p) {
        if ((n = utf8_len(p, (size_t)-1)) == 0) {
            buf_puts(&b, "\xef\xbf\xbd");
            p++;
        } else {
            buf_append(&b, p, n);
            p += n;
        }
    }
    j = json_stringn(b.data ? b.data : "", b.len);
    buf_free(&b);
    return j;
}

static void
envelope_put(json_t *obj, const char *key, json_t *val)
{
    if (val == NULL || json_object_set_new_nocheck(obj, key, val) < 0)
        msg_fatal("out of memory encoding an envelope");
}

static void
envelope_put_str(const envelope_t *env, json_t *obj, const char *key,
                 const char *s)
{
    if (s != NULL)
        envelope_put(obj, key, envelope_jstring(env, key, s));
}

static void
envelope_put_int(json_t *obj, const char *key, int64_t v)
{
    envelope_put(obj, key, json_integer((json_int_t)v));
}

static json_t *
envelope_encode_rcpt(const envelope_t *env, const rcpt_t *r)
{
    json_t *o = json_object();

    if (o == NULL)
        msg_fatal("out of memory encoding an envelope");
    envelope_put_str(env, o, "addr", r->addr ? r->addr : "");
    envelope_put_str(env, o, "orcpt", r->orcpt);
    envelope_put_str(env, o, "orig", r->orig);
    envelope_put_int(o, "notify", r->notify);
    envelope_put(o, "state", json_string(rcpt_state_name(r->state)));
    envelope_put_str(env, o, "dsn", r->dsn);
    envelope_put_str(env, o, "reason", r->reason);
    envelope_put_int(o, "attempts", r->attempts);
    return o;
}

/* Encode as one compact JSON object; the caller frees the result. */
char *
envelope_encode(const envelope_t *env, size_t *len)
{
    json_t *o = json_object();
    json_t *rcpts = json_array();
    char *text;
    size_t i;

    if (o == NULL || rcpts == NULL)
        msg_fatal("out of memory encoding an envelope");
    envelope_put_int(o, "v", ENVELOPE_VERSION);
    envelope_put_str(env, o, "id", env->id);
    envelope_put(o, "state", json_string(queue_state_name(env->state)));
    envelope_put_str(env, o, "sender", env->sender ? env->sender : "");
    envelope_put_int(o, "arrival", env->arrival_us);
    envelope_put_int(o, "size", env->size);
    envelope_put_int(o, "next", env->next_us);
    envelope_put_int(o, "sched", env->sched_us);
    envelope_put_int(o, "attempts", env->attempts);
    envelope_put_int(o, "max_lifetime", env->max_lifetime);
    envelope_put_int(o, "bounce_lifetime", env->bounce_lifetime);
    envelope_put_str(env, o, "client_name", env->client_name);
    envelope_put_str(env, o, "client_addr", env->client_addr);
    envelope_put_str(env, o, "helo", env->helo);
    envelope_put_str(env, o, "protocol", env->protocol);
    envelope_put_str(env, o, "sasl_user", env->sasl_user);
    envelope_put_str(env, o, "message_id", env->message_id);
    envelope_put_str(env, o, "envid", env->envid);
    envelope_put(o, "ret", json_string(envelope_ret_name(env->ret)));
    envelope_put(o, "body_8bit", json_boolean(env->body_8bit));
    envelope_put(o, "smtputf8", json_boolean(env->smtputf8));
    envelope_put(o, "warned", json_boolean(env->warned));
    envelope_put_str(env, o, "reason", env->reason);
    envelope_put_str(env, o, "filter", env->filter);
    for (i = 0; i < env->nrcpt; i++)
        if (json_array_append_new(rcpts,
                                  envelope_encode_rcpt(env, &env->rcpts[i])))
            msg_fatal("out of memory encoding an envelope");
    envelope_put(o, "rcpts", rcpts);

    if ((text = json_dumps(o, JSON_COMPACT)) == NULL)
        msg_fatal("out of memory encoding an envelope");
    json_decref(o);
    if (len != NULL)
        *len = strlen(text);
    return text;
}

/*
 * Decoding.  Each function below returns 0, or -1 after writing the
 * reason to the decoder's error buffer.  where names the object being
 * read: "" for the top level, "rcpts[3]: " for a recipient.
 */

struct envelope_dec {
    char *err;
    size_t errlen;
    const char *where;
};

static int __attribute__((format(printf, 2, 3)))
envelope_fail(struct envelope_dec *d, const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (d->err == NULL || d->errlen == 0)
        return -1;
    if (d->where[0])
        n = snprintf(d->err, d->errlen, "%s", d->where);
    if (n < 0 || (size_t)n >= d->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Fetch key; a JSON null counts as absent. */
static json_t *
envelope_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return v == NULL || json_is_null(v) ? NULL : v;
}

static int
envelope_get_str(struct envelope_dec *d, json_t *obj, const char *key,
                 int required, char **out)
{
    json_t *v = envelope_field(obj, key);

    if (v == NULL) {
        if (required)
            return envelope_fail(d, "missing field \"%s\"", key);
        return 0;
    }
    if (!json_is_string(v))
        return envelope_fail(d, "field \"%s\" is not a string", key);
    envelope_set(out, json_string_value(v));
    return 0;
}

static int
envelope_get_int(struct envelope_dec *d, json_t *obj, const char *key,
                 int required, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = envelope_field(obj, key);
    json_int_t n;

    if (v == NULL) {
        if (required)
            return envelope_fail(d, "missing field \"%s\"", key);
        return 0;
    }
    if (!json_is_integer(v))
        return envelope_fail(d, "field \"%s\" is not an integer", key);
    n = json_integer_value(v);
    if (n < min || n > max)
        return envelope_fail(d, "field \"%s\" is out of range: %lld", key,
                             (long long)n);
    *out = (int64_t)n;
    return 0;
}

static int
envelope_get_count(struct envelope_dec *d, json_t *obj, const char *key,
                   int *out)
{
    int64_t v = 0;

    if (envelope_get_int(d, obj, key, 0, 0, INT32_MAX, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

static int
envelope_get_bool(struct envelope_dec *d, json_t *obj, const char *key,
                  int *out)
{
    json_t *v = envelope_field(obj, key);

    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return envelope_fail(d, "field \"%s\" is not a boolean", key);
    *out = json_is_true(v);
    return 0;
}

static int
envelope_get_enum(struct envelope_dec *d, json_t *obj, const char *key,
                  int required, const char *const *names, size_t n, int *out)
{
    json_t *v = envelope_field(obj, key);
    int i;

    if (v == NULL) {
        if (required)
            return envelope_fail(d, "missing field \"%s\"", key);
        return 0;
    }
    if (!json_is_string(v))
        return envelope_fail(d, "field \"%s\" is not a string", key);
    if ((i = envelope_lookup(json_string_value(v), names, n)) < 0)
        return envelope_fail(d, "field \"%s\" has unknown value \"%.32s\"", key,
                             json_string_value(v));
    *out = i;
    return 0;
}

static int
envelope_decode_rcpt(struct envelope_dec *d, json_t *o, envelope_t *env)
{
    rcpt_t *r;
    int64_t notify = 0;
    int state = RCPT_PENDING;
    char *addr = NULL;

    if (!json_is_object(o))
        return envelope_fail(d, "not an object");
    if (envelope_get_str(d, o, "addr", 1, &addr) < 0)
        return -1;
    r = envelope_add_rcpt(env, addr);
    free(addr);
    if (envelope_get_str(d, o, "orcpt", 0, &r->orcpt) < 0 ||
        envelope_get_str(d, o, "orig", 0, &r->orig) < 0 ||
        envelope_get_int(d, o, "notify", 0, 0, DSN_NOTIFY_ALL, &notify) < 0 ||
        envelope_get_enum(d, o, "state", 1, envelope_rs_names,
                          ENVELOPE_COUNT(envelope_rs_names), &state) < 0 ||
        envelope_get_str(d, o, "dsn", 0, &r->dsn) < 0 ||
        envelope_get_str(d, o, "reason", 0, &r->reason) < 0 ||
        envelope_get_count(d, o, "attempts", &r->attempts) < 0)
        return -1;
    r->notify = (int)notify;
    r->state = (enum rcpt_state)state;
    return 0;
}

static int
envelope_decode_rcpts(struct envelope_dec *d, json_t *obj, envelope_t *env)
{
    json_t *a = envelope_field(obj, "rcpts");
    char where[48];
    size_t i;

    if (a == NULL)
        return envelope_fail(d, "missing field \"rcpts\"");
    if (!json_is_array(a))
        return envelope_fail(d, "field \"rcpts\" is not an array");
    for (i = 0; i < json_array_size(a); i++) {
        snprintf(where, sizeof(where), "rcpts[%zu]: ", i);
        d->where = where;
        if (envelope_decode_rcpt(d, json_array_get(a, i), env) < 0)
            return -1;
    }
    d->where = "";
    return 0;
}

static int
envelope_decode_id(struct envelope_dec *d, json_t *obj, envelope_t *env)
{
    json_t *v = envelope_field(obj, "id");

    if (v == NULL)
        return envelope_fail(d, "missing field \"id\"");
    if (!json_is_string(v))
        return envelope_fail(d, "field \"id\" is not a string");
    if (!queue_id_valid(json_string_value(v)))
        return envelope_fail(d, "field \"id\" is not a queue ID");
    memcpy(env->id, json_string_value(v), QUEUE_ID_SIZE);
    return 0;
}

static int
envelope_decode_obj(struct envelope_dec *d, json_t *o, envelope_t *env)
{
    int64_t version = ENVELOPE_VERSION;
    int state = QS_INCOMING;
    int ret = DSN_RET_DEFAULT;

    if (!json_is_object(o))
        return envelope_fail(d, "record is not a JSON object");
    if (envelope_get_int(d, o, "v", 0, 1, INT32_MAX, &version) < 0)
        return -1;
    if (version > ENVELOPE_VERSION)
        return envelope_fail(d, "record version %lld is newer than %d",
                             (long long)version, ENVELOPE_VERSION);
    if (envelope_decode_id(d, o, env) < 0 ||
        envelope_get_enum(d, o, "state", 1, envelope_qs_names,
                          ENVELOPE_COUNT(envelope_qs_names), &state) < 0 ||
        envelope_get_str(d, o, "sender", 1, &env->sender) < 0 ||
        envelope_get_int(d, o, "arrival", 1, 0, INT64_MAX, &env->arrival_us) <
            0 ||
        envelope_get_int(d, o, "size", 0, 0, INT64_MAX, &env->size) < 0 ||
        envelope_get_int(d, o, "next", 0, 0, INT64_MAX, &env->next_us) < 0 ||
        envelope_get_int(d, o, "sched", 0, 0, INT64_MAX, &env->sched_us) < 0 ||
        envelope_get_count(d, o, "attempts", &env->attempts) < 0 ||
        envelope_get_int(d, o, "max_lifetime", 0, 0, INT64_MAX,
                         &env->max_lifetime) < 0 ||
        envelope_get_int(d, o, "bounce_lifetime", 0, 0, INT64_MAX,
                         &env->bounce_lifetime) < 0)
        return -1;
    env->state = (enum queue_state)state;

    if (envelope_get_str(d, o, "client_name", 0, &env->client_name) < 0 ||
        envelope_get_str(d, o, "client_addr", 0, &env->client_addr) < 0 ||
        envelope_get_str(d, o, "helo", 0, &env->helo) < 0 ||
        envelope_get_str(d, o, "protocol", 0, &env->protocol) < 0 ||
        envelope_get_str(d, o, "sasl_user", 0, &env->sasl_user) < 0 ||
        envelope_get_str(d, o, "message_id", 0, &env->message_id) < 0 ||
        envelope_get_str(d, o, "envid", 0, &env->envid) < 0 ||
        envelope_get_enum(d, o, "ret", 0, envelope_ret_names,
                          ENVELOPE_COUNT(envelope_ret_names), &ret) < 0 ||
        envelope_get_bool(d, o, "body_8bit", &env->body_8bit) < 0 ||
        envelope_get_bool(d, o, "smtputf8", &env->smtputf8) < 0 ||
        envelope_get_bool(d, o, "warned", &env->warned) < 0 ||
        envelope_get_str(d, o, "reason", 0, &env->reason) < 0 ||
        envelope_get_str(d, o, "filter", 0, &env->filter) < 0)
        return -1;
    env->ret = (enum dsn_ret)ret;

    return envelope_decode_rcpts(d, o, env);
}

/* Decode len bytes of JSON; NULL with the reason in err if malformed. */
envelope_t *
envelope_decode(const char *data, size_t len, char *err, size_t errlen)
{
    struct envelope_dec d = {err, errlen, ""};
    json_error_t jerr;
    envelope_t *env;
    json_t *o;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (data == NULL || len == 0) {
        envelope_fail(&d, "empty record");
        return NULL;
    }
    if ((o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        envelope_fail(&d, "not JSON: %s at byte %d", jerr.text, jerr.position);
        return NULL;
    }
    env = envelope_new();
    if (envelope_decode_obj(&d, o, env) < 0)
        envelope_free(&env);
    json_decref(o);
    return env;
}
