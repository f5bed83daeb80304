/* SPDX-License-Identifier: ISC */
/*
 * config: the parameters, read from a main.cf-style file and -o options.
 *
 * The syntax is Postfix's: "name = value" lines, "#" comment lines,
 * lines that begin with white space continue the previous one, and
 * values may refer to other parameters as $name, ${name} or $(name),
 * with ${name?text} and ${name:text} for "if set" and "if empty".
 *
 * A config_t is immutable once loaded and reference counted.  The
 * running daemon installs one as current; a reload loads and checks a
 * new one, then swaps it in, and whoever still holds the old object
 * keeps using it until it lets go.
 */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdio.h>

#include "lib/buf.h"
#include "lib/table.h"

enum param_type {
    PT_STR,  /* text */
    PT_INT,  /* a whole number >= 0 */
    PT_SIZE, /* bytes, a whole number >= 0 */
    PT_TIME, /* a number with an optional unit s, m, h, d, w; in seconds */
    PT_BOOL, /* yes or no */
    PT_LIST, /* items separated by commas and/or white space */
    PT_MAPS, /* a list of lookup table specs, opened at load */
    PT_RESTRICTIONS, /* a list of restrictions and their arguments; the
                      * arguments of check_*_access are tables, opened
                      * at load */
    PT_DOMAINS,      /* a Postfix domain list: names, ".name" for the
                      * subdomains, "type:table" (opened at load, the
                      * domain a key), "/file" (its words, read at load),
                      * each "!" to exclude */
};

enum param_id {
#define PARAM(id, name, type, dflt) P_##id,
#include "lib/params.h"
#undef PARAM
    P_COUNT
};

typedef struct config config_t;

/* Load path (NULL for the embedded defaults alone) and apply the
 * overrides, each "name=value".  Returns a config with one reference,
 * or NULL with the errors appended to err, one per line, each starting
 * with file:line (or "-o name" for an override).  Warnings (unknown
 * names) are logged with msg_warn. */
config_t *config_load(const char *path, char *const *overrides,
                      size_t noverrides, buf_t *err);

/* Take one more reference; returns cfg. */
config_t *config_ref(config_t *cfg);

/* Drop a reference and clear *cfgp; the last one frees.  Accepts NULL. */
void config_unref(config_t **cfgp);

/* The expanded value of a parameter. */
const char *config_str(const config_t *cfg, enum param_id id);

/* The value of a PT_INT, PT_SIZE, PT_TIME (seconds) or PT_BOOL (0/1)
 * parameter. */
long long config_num(const config_t *cfg, enum param_id id);

/* The items of a PT_LIST parameter, NULL-terminated; count in *n if n is
 * not NULL.  Owned by cfg. */
char *const *config_list(const config_t *cfg, enum param_id id, size_t *n);

/* The lookup tables named by a PT_MAPS parameter (local_recipient_maps,
 * ...), opened when the config was loaded; NULL-terminated, owned by
 * cfg.  For PT_RESTRICTIONS the array runs parallel to config_list():
 * entry i is the table that item i names, or NULL. */
table_t *const *config_tables(const config_t *cfg, enum param_id id);

/* Look key up in each table of a maps parameter in turn.  Returns 1 and
 * sets *value on the first hit, 0 if none has it. */
int config_maps_lookup(const config_t *cfg, enum param_id id,
                       const char *key, const char **value);

/* Nonzero if domain matches the PT_DOMAINS parameter id: the first item
 * that matches decides (an item with "!" excludes).  In relay_domains, as
 * in Postfix's parent_domain_matches_subdomains default, a name matches
 * its subdomains too; elsewhere only ".name" does. */
int config_domain_listed(const config_t *cfg, enum param_id id,
                         const char *domain);

/* Look addr up in the maps parameter id as itself, then as "@domain",
 * the domain's catch-all.  Returns 1 and sets *value on a hit. */
int config_maps_lookup_addr(const config_t *cfg, enum param_id id,
                            const char *addr, const char **value);

/* Nonzero if the parameter was set in the file or by -o. */
int config_is_set(const config_t *cfg, enum param_id id);

/* The file the config was read from, or NULL. */
const char *config_path(const config_t *cfg);

/* The parameter's name. */
const char *config_name(enum param_id id);

/* Look a parameter up by name; returns its id, or P_COUNT. */
enum param_id config_lookup_name(const char *name);

/* Write "name = value" for every parameter set to something other than
 * its default, in name order, as postconf -n does. */
void config_print_changed(const config_t *cfg, FILE *fp);

/* Append to out the names of parameters whose expanded values differ
 * between a and b, separated by single spaces. */
void config_diff(const config_t *a, const config_t *b, buf_t *out);

/* Parse a PT_TIME value; returns 0 and sets *secs, or -1. */
int config_parse_time(const char *s, long long *secs);

/* Parse a "host:port" or "[host]:port" listener address; returns 0 and
 * fills host (at most hostlen bytes) and *port, or -1. */
int config_parse_hostport(const char *s, char *host, size_t hostlen,
                          int *port);

/* A check run on a parameter's value at every load, for meanings that
 * lib/ does not know (restriction names, say).  It appends errors to
 * err, without file:line, one per line; config_load adds the place. */
typedef void (*config_check_fn)(const config_t *cfg, enum param_id id,
                                buf_t *err);

/* Register fn for parameter id (before the first load). */
void config_register_check(enum param_id id, config_check_fn fn);

/* The process-wide current config, with a reference for the caller. */
config_t *config_current(void);

/* Make cfg current (taking over the caller's reference). */
void config_set_current(config_t *cfg);

#endif
