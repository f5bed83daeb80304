/* SPDX-License-Identifier: ISC */
/*
 * client: one libcurl easy handle per client, used for one request at a
 * time.  Over a unix socket the URL's host is a placeholder
 * ("localhost") and CURLOPT_UNIX_SOCKET_PATH carries the connection.
 * The token is sent in an Authorization header, never in the URL.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "admin/client.h"
#include "admin/token.h"
#include "lib/mem.h"

#define CLIENT_DEFAULT_CONFIG TERN_SYSCONFDIR "/tern/tern.conf"
#define CLIENT_TIMEOUT 600L

struct client {
    CURL *curl;
    char *base;      /* "http://127.0.0.1:8025" */
    char *unix_path; /* or NULL */
    char *auth;      /* "Authorization: Bearer ..." or NULL */
    char *where;     /* for messages */
};

const char *
client_config_path(const char *given)
{
    const char *env = getenv("TERN_CONFIG");

    if (given)
        return given;
    if (env && *env)
        return env;
    if (access(CLIENT_DEFAULT_CONFIG, F_OK) == 0)
        return CLIENT_DEFAULT_CONFIG;
    return NULL;
}

config_t *
client_load_config(const char *prog, const char *path)
{
    config_t *cfg;
    buf_t errs;

    buf_init(&errs);
    cfg = config_load(path, NULL, 0, &errs);
    if (cfg == NULL)
        fprintf(stderr, "%s: %s", prog, errs.data ? errs.data : "bad config\n");
    buf_free(&errs);
    return cfg;
}

/* Pick the listener: unix first, else the first host:port. */
static int
client_pick(client_t *c, const config_t *cfg, char **err)
{
    char *const *items = config_list(cfg, P_ADMIN_LISTEN, NULL);
    const char *tcp = NULL;
    char host[256];
    int port;

    for (; items && *items; items++) {
        if (strncmp(*items, "unix:", 5) == 0) {
            c->unix_path = mem_strdup(*items + 5);
            c->base = mem_strdup("http://localhost");
            return 0;
        }
        if (tcp == NULL)
            tcp = *items;
    }
    if (tcp == NULL) {
        *err = mem_strdup("admin_listen is empty: ternd serves no admin API");
        return -1;
    }
    if (config_parse_hostport(tcp, host, sizeof(host), &port) < 0) {
        *err = mem_printf("admin_listen %s is not host:port", tcp);
        return -1;
    }
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        snprintf(host, sizeof(host), "::1");
    c->base = mem_printf(strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d",
                         host, port);
    return 0;
}

/* The token of admin_token_file, when the file names one and is
 * readable; a listener on loopback may need none. */
static int
client_token(client_t *c, const config_t *cfg, char **err)
{
    const char *path = config_str(cfg, P_ADMIN_TOKEN_FILE);
    char *token = NULL;
    char *why = NULL;
    int r;

    if (c->unix_path != NULL || path[0] == '\0')
        return 0;
    r = token_read_first(path, &token, &why);
    if (r < 0) {
        *err = mem_printf("%s (run as root or as the mail_owner, or give "
                          "--token)", why);
        free(why);
        return -1;
    }
    if (r == 1) {
        c->auth = mem_printf("Authorization: Bearer %s", token);
        free(token);
    }
    return 0;
}

client_t *
client_new(const config_t *cfg, const char *url, const char *token,
           char **err)
{
    client_t *c = mem_calloc(1, sizeof(*c));

    if (url != NULL && strncmp(url, "unix:", 5) == 0) {
        c->unix_path = mem_strdup(url + 5);
        c->base = mem_strdup("http://localhost");
    } else if (url != NULL) {
        c->base = mem_strdup(url);
        if (c->base[0] && c->base[strlen(c->base) - 1] == '/')
            c->base[strlen(c->base) - 1] = '\0';
    } else if (client_pick(c, cfg, err) < 0) {
        client_free(&c);
        return NULL;
    }
    if (token != NULL)
        c->auth = mem_printf("Authorization: Bearer %s", token);
    else if (url == NULL && client_token(c, cfg, err) < 0) {
        client_free(&c);
        return NULL;
    }
    c->where = c->unix_path ? mem_printf("unix:%s", c->unix_path)
                            : mem_strdup(c->base);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((c->curl = curl_easy_init()) == NULL) {
        *err = mem_strdup("cannot start libcurl");
        client_free(&c);
        return NULL;
    }
    return c;
}

static size_t
client_write(char *data, size_t size, size_t n, void *arg)
{
    buf_append(arg, data, size * n);
    return size * n;
}

int
client_request(client_t *c, const char *method, const char *path,
               const char *body, buf_t *out, int *down, char **err)
{
    struct curl_slist *hdrs = NULL;
    char *url = mem_printf("%s%s", c->base, path);
    char ebuf[CURL_ERROR_SIZE];
    long status = 0;
    CURLcode rc;

    *down = 0;
    curl_easy_reset(c->curl);
    ebuf[0] = '\0';
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, client_write);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, CLIENT_TIMEOUT);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->unix_path != NULL)
        curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
    if (c->auth != NULL)
        hdrs = curl_slist_append(hdrs, c->auth);
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(c->curl);
    curl_slist_free_all(hdrs);
    free(url);
    if (rc != CURLE_OK) {
        *down = rc == CURLE_COULDNT_CONNECT;
        *err = mem_printf("%s: %s", c->where,
                          ebuf[0] ? ebuf : curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    return (int)status;
}

char *
client_error_message(int status, const buf_t *body)
{
    json_t *j = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    const char *msg = NULL;
    char *out;

    if (j != NULL)
        msg = json_string_value(
            json_object_get(json_object_get(j, "error"), "message"));
    if (msg != NULL)
        out = mem_strdup(msg);
    else
        out = mem_printf("HTTP status %d", status);
    json_decref(j);
    return out;
}

const char *
client_where(const client_t *c)
{
    return c->where;
}

void
client_free(client_t **cp)
{
    client_t *c = cp ? *cp : NULL;

    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->unix_path);
    free(c->auth);
    free(c->where);
    free(c);
    *cp = NULL;
}
