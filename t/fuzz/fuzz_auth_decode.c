/* SPDX-License-Identifier: ISC */
/*
 * fuzz_auth_decode: an AUTH response line as a client sends it, through
 * the decoders the session calls: strict base64, the PLAIN response and
 * a LOGIN response.  Base64 that decodes must encode back to the same
 * text (the decoder accepts exactly one spelling of each byte string),
 * and the bytes of the input, encoded, must decode back to themselves.
 */
#include "autoconf.h"

#include <stdlib.h>
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

static void
fuzz_plain(const char *text)
{
    char *authzid = NULL;
    char *user = NULL;
    char *pass = NULL;
    int rc = smtpd_auth_plain_parse(text, &authzid, &user, &pass);

    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2);
    if (rc == 0) {
        FUZZ_CHECK(authzid != NULL && user != NULL && pass != NULL);
        FUZZ_CHECK(user[0] != '\0' && pass[0] != '\0');
        FUZZ_CHECK(authzid[0] == '\0' || strcmp(authzid, user) == 0);
    } else {
        FUZZ_CHECK(authzid == NULL && user == NULL && pass == NULL);
    }
    free(authzid);
    free(user);
    smtpd_auth_secret_free(&pass);
    FUZZ_CHECK(pass == NULL);
}

static void
fuzz_login(const char *text)
{
    char *out = NULL;

    if (smtpd_auth_login_decode(text, &out) == 0) {
        FUZZ_CHECK(out != NULL && out[0] != '\0');
        smtpd_auth_secret_free(&out);
    } else {
        FUZZ_CHECK(out == NULL);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    buf_t dec;
    buf_t enc;

    buf_init(&dec);
    buf_init(&enc);
    if (smtpd_auth_b64_decode(text, &dec) == 0) {
        FUZZ_CHECK(dec.len <= strlen(text) / 4 * 3);
        smtpd_auth_b64_encode(dec.data, dec.len, &enc);
        FUZZ_CHECK(enc.len == strlen(text));
        FUZZ_CHECK(enc.len == 0 || memcmp(enc.data, text, enc.len) == 0);
    } else {
        FUZZ_CHECK(dec.len == 0);
    }
    buf_reset(&enc);
    buf_reset(&dec);

    /* Any bytes at all survive the way through base64. */
    smtpd_auth_b64_encode(data, size, &enc);
    FUZZ_CHECK(enc.len == (size + 2) / 3 * 4);
    FUZZ_CHECK(smtpd_auth_b64_decode(enc.len ? enc.data : "", &dec) == 0);
    FUZZ_CHECK(dec.len == size &&
               (size == 0 || memcmp(dec.data, data, size) == 0));

    fuzz_plain(text);
    fuzz_login(text);
    buf_free(&enc);
    buf_free(&dec);
    free(text);
    return 0;
}
