/* SPDX-License-Identifier: ISC */
/*
 * fuzz: what the libFuzzer targets in t/fuzz/ share.  Each target is one
 * program built with -fsanitize=fuzzer,address,undefined that hands the
 * fuzzer's bytes to one parser and checks what must hold of its result;
 * a crash, a sanitizer report or a failed FUZZ_CHECK is a finding.
 *
 * Parsers that read a file get an in-memory file (memfd) named by its
 * /proc/self/fd path, so no input touches the disk.
 */
#ifndef TERN_FUZZ_H
#define TERN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Send tern's log lines to /dev/null, so that the fuzzer's own output
 * stays readable.  Call once, from LLVMFuzzerInitialize. */
void fuzz_quiet(void);

/* Replace the contents of the target's in-memory file with size bytes
 * at data; returns its path, valid for the life of the process. */
const char *fuzz_file(const void *data, size_t size);

/* A NUL-terminated copy of size bytes; the caller frees it.  NUL bytes
 * inside the input stay, so C-string parsers see only the part before
 * the first of them, as they would from a session that split lines. */
char *fuzz_strndup(const void *data, size_t size);

/* Abort with a message naming the condition when cond is false: the
 * fuzzer records the input as a crash. */
#define FUZZ_CHECK(cond)                                                 \
    do {                                                                 \
        if (!(cond))                                                     \
            fuzz_fail(__FILE__, __LINE__, #cond);                        \
    } while (0)

void fuzz_fail(const char *file, int line, const char *what)
    __attribute__((noreturn));

#endif
