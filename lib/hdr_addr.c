/* SPDX-License-Identifier: ISC */
/*
 * hdr_addr: a scanner for RFC 5322 address lists.
 *
 * Flow: the value is read once, left to right, as a list of elements
 * separated by commas (and by the ";" that ends a group).  In each
 * element the address is what stands between the first "<" and its
 * ">" (a name-addr), or else the one word of an addr-spec standing
 * alone.  Quoted strings, comments (nested, RFC 5322 section 3.2.2)
 * and backslash escapes are skipped as units, so that a comma or "<"
 * inside them separates nothing.  A group's display name ("team:") is
 * not an address; an empty group ("undisclosed-recipients:;") has none.
 * The obsolete route of RFC 5322 section 4.4 ("<@relay:user@host>") is
 * left out of the span.
 *
 * Guarantees: the scanner never reads outside the value, needs no
 * terminating NUL, and reports spans in the order they appear, each
 * non-empty and free of unquoted white space.  It allocates nothing and
 * keeps no state between calls: any thread may call it.
 */
#include "autoconf.h"

#include "lib/hdr_addr.h"

#define HDR_ADDR_NONE ((size_t)-1)

static int
hdr_addr_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Index just past the quoted string that starts at i. */
static size_t
hdr_addr_skip_quoted(const char *v, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (v[i] == '\\')
            i++;
        else if (v[i] == '"')
            return i + 1;
    }
    return len;
}

/* Index just past the comment that starts at i; comments nest. */
static size_t
hdr_addr_skip_comment(const char *v, size_t len, size_t i)
{
    int depth = 0;

    for (; i < len; i++) {
        if (v[i] == '\\')
            i++;
        else if (v[i] == '(')
            depth++;
        else if (v[i] == ')' && --depth == 0)
            return i + 1;
    }
    return len;
}

/* Report the inside of the angle brackets from start to end, without
 * surrounding white space or a source route. */
static size_t
hdr_addr_angle(const char *v, size_t start, size_t end, hdr_addr_fn fn,
               void *arg)
{
    size_t i;

    while (start < end && hdr_addr_space(v[start]))
        start++;
    while (end > start && hdr_addr_space(v[end - 1]))
        end--;
    if (start < end && v[start] == '@') {
        for (i = start; i < end; i++) {
            if (v[i] == '"')
                i = hdr_addr_skip_quoted(v, end, i) - 1;
            else if (v[i] == ':')
                break;
        }
        start = i < end ? i + 1 : end;
    }
    if (start >= end)
        return 0;
    fn(arg, start, end - start);
    return 1;
}

size_t
hdr_addr_scan(const char *value, size_t len, hdr_addr_fn fn, void *arg)
{
    size_t found = 0;
    size_t tok = HDR_ADDR_NONE; /* start of the bare word, if any */
    size_t tok_end = 0;
    int gap = 0;    /* white space or a comment after the word so far */
    int broken = 0; /* the bare word has unquoted space inside: no addr */
    int angle = 0;  /* this element had a <...> */
    size_t i = 0;

    while (i <= len) {
        char c = i < len ? value[i] : ',';

        if (c == ',' || c == ';') {
            if (!angle && tok != HDR_ADDR_NONE && !broken) {
                fn(arg, tok, tok_end - tok);
                found++;
            }
            tok = HDR_ADDR_NONE;
            gap = broken = angle = 0;
            i++;
            continue;
        }
        if (c == '(' || hdr_addr_space(c)) {
            i = c == '(' ? hdr_addr_skip_comment(value, len, i) : i + 1;
            gap = tok != HDR_ADDR_NONE;
            continue;
        }
        if (c == ':' && !angle) {
            /* What came before was a group's display name. */
            tok = HDR_ADDR_NONE;
            gap = broken = 0;
            i++;
            continue;
        }
        if (c == '<') {
            size_t j;

            for (j = i + 1; j < len && value[j] != '>'; j++)
                if (value[j] == '"')
                    j = hdr_addr_skip_quoted(value, len, j) - 1;
                else if (value[j] == '\\')
                    j++;
            if (j > len)
                j = len;
            if (!angle)
                found += hdr_addr_angle(value, i + 1, j, fn, arg);
            angle = 1;
            i = j < len ? j + 1 : len;
            continue;
        }
        if (tok == HDR_ADDR_NONE)
            tok = i;
        else if (gap)
            broken = 1;
        gap = 0;
        if (c == '"')
            i = hdr_addr_skip_quoted(value, len, i);
        else if (c == '\\')
            i = i + 2 < len ? i + 2 : len;
        else
            i++;
        tok_end = i;
    }
    return found;
}
