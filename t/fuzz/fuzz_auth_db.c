/* SPDX-License-Identifier: ISC */
/*
 * fuzz_auth_db: the bytes as a password file, through
 * smtpd_auth_db_open.  A file is either refused with one error line per
 * fault, each naming the file, or gives a db with at most one user per
 * line.  No password is checked: crypt's cost is chosen by the hash,
 * and a file could ask for hours of it.
 */
#include "autoconf.h"

#include <string.h>

#include "lib/buf.h"
#include "server/smtpd_auth.h"
#include "t/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    smtpd_auth_db_t *db;
    buf_t err;
    size_t lines = 0;
    size_t i;

    for (i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (size > 0 && data[size - 1] != '\n')
        lines++;

    buf_init(&err);
    db = smtpd_auth_db_open(path, &err);
    if (db == NULL) {
        char *line;
        char *save = NULL;

        FUZZ_CHECK(err.len > 0 && err.data[err.len - 1] == '\n');
        for (line = strtok_r(err.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            FUZZ_CHECK(strncmp(line, path, strlen(path)) == 0);
    } else {
        FUZZ_CHECK(err.len == 0);
        FUZZ_CHECK(smtpd_auth_db_count(db) <= lines);
        smtpd_auth_db_t *other = smtpd_auth_db_ref(db);

        FUZZ_CHECK(other == db);
        smtpd_auth_db_free(&db);
        FUZZ_CHECK(db == NULL);
        /* The second reference still holds it. */
        FUZZ_CHECK(smtpd_auth_db_count(other) <= lines);
        smtpd_auth_db_free(&other);
    }
    buf_free(&err);
    return 0;
}
