/* SPDX-License-Identifier: ISC */
/*
 * fuzz: helpers shared by the libFuzzer targets (see fuzz.h).  The
 * in-memory file is created once and rewritten for each input; a
 * parser that opens it by path gets a fresh descriptor starting at
 * offset zero, exactly as with a file on disk.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "t/fuzz/fuzz.h"

static int fuzz_fd = -1;
static char fuzz_path[64];

void
fuzz_quiet(void)
{
    if (log_open(LOG_DEST_FILE, "tern-fuzz", "/dev/null") < 0) {
        perror("fuzz: /dev/null");
        abort();
    }
}

const char *
fuzz_file(const void *data, size_t size)
{
    const char *p = data;

    if (fuzz_fd < 0) {
        fuzz_fd = memfd_create("tern-fuzz", MFD_CLOEXEC);
        if (fuzz_fd < 0) {
            perror("fuzz: memfd_create");
            abort();
        }
        snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d",
                 fuzz_fd);
    }
    if (ftruncate(fuzz_fd, 0) < 0) {
        perror("fuzz: ftruncate");
        abort();
    }
    while (size > 0) {
        ssize_t n = pwrite(fuzz_fd, p, size, p - (const char *)data);

        if (n <= 0) {
            perror("fuzz: pwrite");
            abort();
        }
        p += n;
        size -= (size_t)n;
    }
    return fuzz_path;
}

char *
fuzz_strndup(const void *data, size_t size)
{
    char *s = mem_alloc(size + 1);

    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

void
fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    abort();
}
