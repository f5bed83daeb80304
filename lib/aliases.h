/* SPDX-License-Identifier: ISC */
/*
 * aliases: the local alias files of alias_maps, in the aliases(5) form
 * that Postfix's newaliases reads:
 *
 *     # comment
 *     name: target, target, ...
 *     "quoted name": "|/usr/bin/prog -x", /var/log/file, :include:/path
 *         continued on lines that begin with white space
 *
 * A target is an address (delivered to as a new recipient), "|command"
 * (the message piped into it), "/path" (appended to that file, or a
 * Maildir when it ends in "/"), or ":include:/path" (more targets read
 * from that file when the alias is expanded).  Names are matched
 * without regard to case.  An aliases_t is read whole when opened and
 * immutable afterwards: many threads may look it up at once.
 */
#ifndef TERN_ALIASES_H
#define TERN_ALIASES_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/buf.h"

typedef struct aliases aliases_t;

enum aliases_kind {
    ALIASES_ADDRESS, /* an address, to be delivered to in its turn */
    ALIASES_COMMAND, /* a command line (without the "|") */
    ALIASES_FILE,    /* an absolute path; a Maildir if it ends in "/" */
    ALIASES_INCLUDE, /* an absolute path of more targets (unexpanded) */
};

typedef struct aliases_target {
    enum aliases_kind kind;
    char *value;
    int no_expand;    /* "\user": deliver to user, skip its own alias */
    int from_include; /* read from an :include: file, not the alias file */
    uid_t owner;      /* owner of the file the target was read from */
    char *source;     /* that file and line, "/etc/aliases:12" */
} aliases_target_t;

typedef struct aliases_result {
    aliases_target_t *v;
    size_t n;
    size_t cap;
} aliases_result_t;

/* Read the alias files named by specs (a NULL-terminated list such as
 * alias_maps gives): "/path", or "texthash:/path" or "hash:/path", which
 * mean the same: tern reads the source file itself, there is no
 * database to build.  Returns the tables, or NULL with every error
 * appended to err, one per line, each starting with FILE:LINE.  The
 * tables hold one reference; aliases_unref lets them go. */
aliases_t *aliases_open(char *const *specs, buf_t *err);

/* The number of aliases read (over all files). */
size_t aliases_count(const aliases_t *a);

/* Append to out the targets of alias name as its file lists them,
 * :include: targets unexpanded.  Returns 1 if name is an alias (the
 * first file that has it wins), 0 if not. */
int aliases_lookup(const aliases_t *a, const char *name, aliases_result_t *out);

/* Expand name for delivery: the targets of its alias, with :include:
 * files read now (nested ones too) and addresses without "@" that are
 * themselves aliases expanded in turn.  An alias that names itself
 * ("root: root, /var/log/root") yields that address with no_expand set,
 * as does a name met again further down.  Returns 1 with the final
 * targets (addresses, commands, files) appended to out, 0 if name is
 * not an alias, or -1 with a reason in err (an :include: file that
 * cannot be read or has a bad line, too deep a nesting). */
int aliases_expand(const aliases_t *a, const char *name, aliases_result_t *out,
                   buf_t *err);

/* Free the targets of r; r is left empty.  Accepts NULL. */
void aliases_result_free(aliases_result_t *r);

/* The process-wide tables in force, with a reference for the caller
 * (NULL if none are installed). */
aliases_t *aliases_current(void);

/* Install a (taking over the caller's reference; NULL for none); the
 * tables in force before are freed when their last user lets go. */
void aliases_set_current(aliases_t *a);

/* Take one more reference; returns a. */
aliases_t *aliases_ref(aliases_t *a);

/* Drop a reference (the last one frees) and clear *ap; accepts NULL. */
void aliases_unref(aliases_t **ap);

#endif
