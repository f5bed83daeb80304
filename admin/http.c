/* SPDX-License-Identifier: ISC */
/*
 * http: admin HTTP server.  libmicrohttpd runs its own polling thread
 * and a small thread pool; handlers never touch session state, only
 * thread-safe interfaces.  Every answer is JSON; errors have the shape
 * {"error": {"code": "...", "message": "..."}}.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "admin/http.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"

struct http_server {
    struct MHD_Daemon *mhd;
};

static enum MHD_Result
http_send_json(struct MHD_Connection *conn, unsigned int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    struct MHD_Response *resp;
    enum MHD_Result rc;
    size_t len;

    json_decref(body);
    if (text == NULL)
        msg_fatal("out of memory encoding JSON");
    len = strlen(text);
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result
http_error(struct MHD_Connection *conn, unsigned int status, const char *code,
           const char *message)
{
    return http_send_json(conn, status,
                          json_pack("{s:{s:s,s:s}}", "error", "code", code,
                                    "message", message));
}

static enum MHD_Result
http_handle(void *cls, struct MHD_Connection *conn, const char *url,
            const char *method, const char *version, const char *upload,
            size_t *upload_size, void **state)
{
    /* The first call for a request only announces it. */
    if (*state == NULL) {
        *state = conn;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return http_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                              "method_not_allowed", "use GET");
        return http_send_json(conn, MHD_HTTP_OK,
                              json_pack("{s:s}", "status", "ok"));
    }
    return http_error(conn, MHD_HTTP_NOT_FOUND, "not_found",
                      "no such resource");
}

http_server_t *
http_start(const char *hostport, char **err)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char host[256];
    char port[16];
    int portnum;
    int rc;
    http_server_t *h;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;

    if (config_parse_hostport(hostport, host, sizeof(host), &portnum) < 0) {
        *err = mem_printf("%s: not host:port", hostport);
        return NULL;
    }
    snprintf(port, sizeof(port), "%d", portnum);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        *err = mem_printf("%s: %s", hostport, gai_strerror(rc));
        return NULL;
    }
    if (res->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h = mem_calloc(1, sizeof(*h));
    h->mhd = MHD_start_daemon(flags, (uint16_t)portnum, NULL, NULL,
                              http_handle, h, MHD_OPTION_SOCK_ADDR,
                              res->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
                              (unsigned int)2, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned int)30, MHD_OPTION_END);
    freeaddrinfo(res);
    if (h->mhd == NULL) {
        *err = mem_printf("%s: cannot start the admin HTTP server: %s",
                          hostport, strerror(errno));
        free(h);
        return NULL;
    }
    return h;
}

void
http_stop(http_server_t **hp)
{
    http_server_t *h = hp ? *hp : NULL;

    if (h == NULL)
        return;
    MHD_stop_daemon(h->mhd);
    free(h);
    *hp = NULL;
}
