/* SPDX-License-Identifier: ISC */
/*
 * config_api: showing and reloading the configuration.
 *
 * GET shows every parameter with its expanded value, as the daemon uses
 * it now, and which ones the file or -o set.  A value that is a secret
 * (a parameter named for a password, secret or passphrase) is shown as
 * "********" when it is set, so the answer can be pasted into a ticket.
 *
 * The reload runs the callback ternd gave, the very function SIGHUP
 * runs: it either swaps in the new configuration and tells which names
 * changed, or changes nothing and returns the errors with file:line.
 */
#include "autoconf.h"

#include <microhttpd.h>
#include <string.h>

#include "admin/config_api.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"

#define CONFIG_API_MASK "********"

int
config_api_secret(const char *name)
{
    static const char *const words[] = {"password", "secret", "passphrase",
                                        NULL};
    int i;

    for (i = 0; words[i]; i++)
        if (strstr(name, words[i]) != NULL)
            return 1;
    return 0;
}

void
config_api_get(http_req_t *r)
{
    config_t *cfg = config_current();
    json_t *params = json_object();
    json_t *set = json_array();
    const char *path;
    int id;

    if (cfg == NULL) {
        http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_config", NULL,
                         "no configuration is in force");
        return;
    }
    for (id = 0; id < P_COUNT; id++) {
        const char *name = config_name((enum param_id)id);
        const char *val = config_str(cfg, (enum param_id)id);
        json_t *j;

        if (config_api_secret(name) && val[0] != '\0')
            val = CONFIG_API_MASK;
        j = json_string(val);
        json_object_set_new(params, name, j ? j : json_string("?"));
        if (config_is_set(cfg, (enum param_id)id))
            json_array_append_new(set, json_string(name));
    }
    path = config_path(cfg);
    http_reply_json(r, MHD_HTTP_OK,
                    json_pack("{s:o,s:o,s:o}", "path",
                              path ? json_string(path) : json_null(),
                              "parameters", params, "set", set));
    config_unref(&cfg);
}

/* Split text at white space (names) or newlines (errors) into an array. */
static json_t *
config_api_split(const char *text, const char *seps)
{
    json_t *arr = json_array();
    char *copy = mem_strdup(text ? text : "");
    char *save = NULL;
    char *p;

    for (p = strtok_r(copy, seps, &save); p; p = strtok_r(NULL, seps, &save)) {
        json_t *s = json_string(p);

        json_array_append_new(arr, s ? s : json_string("?"));
    }
    free(copy);
    return arr;
}

void
config_api_reload(http_req_t *r)
{
    static const char *const fields[] = {NULL};
    const struct http_hooks *hooks = http_req_hooks(r);
    json_t *body = http_req_body(r);
    json_t *errs_json;
    buf_t changed;
    buf_t errs;

    if (body != NULL && http_check_fields(r, body, fields) < 0)
        return;
    if (hooks->reload == NULL) {
        http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", NULL,
                         "reload is not available");
        return;
    }
    buf_init(&changed);
    buf_init(&errs);
    if (hooks->reload(hooks->arg, &changed, &errs) < 0) {
        errs_json = config_api_split(errs.data, "\n");
        http_audit(r, "reload refused: %zu error(s)",
                   json_array_size(errs_json));
        http_reply_error_details(
            r, MHD_HTTP_BAD_REQUEST, "invalid_config",
            json_array_size(errs_json)
                ? json_string_value(json_array_get(errs_json, 0))
                : "the configuration was refused",
            errs_json);
    } else {
        http_audit(r, "reload: changed=%s",
                   changed.len ? changed.data : "(nothing)");
        http_reply_json(r, MHD_HTTP_OK,
                        json_pack("{s:o}", "changed",
                                  config_api_split(changed.data, " ")));
    }
    buf_free(&changed);
    buf_free(&errs);
}
