/* SPDX-License-Identifier: ISC */
/*
 * utf8: checking UTF-8 (RFC 3629 section 4's syntax).  Threads: any.
 */
#include "autoconf.h"

#include "lib/utf8.h"

size_t
utf8_len(const unsigned char *p, size_t avail)
{
    unsigned long cp;
    size_t len;
    size_t i;

    if (avail == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (avail < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int
utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;

    for (; *p; p += n)
        if ((n = utf8_len(p, (size_t)-1)) == 0)
            return 0;
    return 1;
}
