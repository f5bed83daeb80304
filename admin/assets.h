/* SPDX-License-Identifier: ISC */
/*
 * assets: the status page's files (admin/status.html, .js, .css),
 * compiled into ternd so that the page always matches the API it calls.
 * admin/assets.c is generated from them by admin/embed.sh.
 */
#ifndef TERN_ASSETS_H
#define TERN_ASSETS_H

#include <stddef.h>

struct asset {
    const char *path; /* "/status.html" */
    const char *type; /* Content-Type */
    const char *data;
    size_t len;
};

/* The file served at path, or NULL. */
const struct asset *assets_find(const char *path);

#endif
