/* SPDX-License-Identifier: ISC */
/*
 * config_api: the configuration under /api/v1: the effective parameters
 * (postconf's view, secrets masked) and a reload that goes through the
 * same code as SIGHUP.
 */
#ifndef TERN_CONFIG_API_H
#define TERN_CONFIG_API_H

#include "admin/http.h"

/* Nonzero if a parameter's value is a secret and never shown. */
int config_api_secret(const char *name);

/* GET /api/v1/config */
void config_api_get(http_req_t *r);

/* POST /api/v1/config/reload */
void config_api_reload(http_req_t *r);

#endif
