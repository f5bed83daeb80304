/* SPDX-License-Identifier: ISC */
/*
 * fuzz_envelope: bytes as they might be found in the queue's meta column
 * family, through envelope_decode.  The decoder must never trust them:
 * a record is either refused with a reason or decoded into an envelope
 * whose own encoding decodes again to the very same encoding.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"
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
    char err[256];
    envelope_t *env;
    envelope_t *again;
    char *enc;
    char *enc2;
    size_t len;
    size_t len2;
    size_t i;

    env = envelope_decode((const char *)data, size, err, sizeof(err));
    if (env == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(env->sender != NULL);
    FUZZ_CHECK(env->nrcpt <= env->rcpt_cap);
    for (i = 0; i < env->nrcpt; i++)
        FUZZ_CHECK(env->rcpts[i].addr != NULL);
    FUZZ_CHECK(envelope_pending(env) <= env->nrcpt);
    (void)queue_state_name(env->state);

    enc = envelope_encode(env, &len);
    FUZZ_CHECK(enc != NULL && strlen(enc) == len);
    again = envelope_decode(enc, len, err, sizeof(err));
    FUZZ_CHECK(again != NULL);
    enc2 = envelope_encode(again, &len2);
    FUZZ_CHECK(len2 == len && memcmp(enc, enc2, len) == 0);

    free(enc2);
    free(enc);
    envelope_free(&again);
    envelope_free(&env);
    FUZZ_CHECK(env == NULL);
    return 0;
}
