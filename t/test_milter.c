/* SPDX-License-Identifier: ISC */
/*
 * Tests of the Milter packet codec in server/smtpd_milter and of the
 * edits in queue/cleanup_edit: packets built and taken back, whole and
 * one byte at a time; a table of reply packets, good and malformed,
 * through the parser; header, body and envelope edits on a message.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/buf.h"
#include "queue/cleanup_edit.h"
#include "queue/envelope.h"
#include "server/smtpd_milter.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_packet_roundtrip(void **state)
{
    static const char data[] = "localhost\0" "4\x04\xd2" "127.0.0.1";
    buf_t in;
    buf_t out;
    buf_t got;
    const char *why = NULL;
    int cmd = 0;
    size_t i;

    buf_init(&out);
    buf_init(&got);
    smtpd_milter_packet(&out, SMFIC_CONNECT, data, sizeof(data));
    assert_int_equal(out.len, 5 + sizeof(data));
    assert_memory_equal(out.data, "\x00\x00\x00\x18" "C", 5);
    smtpd_milter_packet(&out, SMFIC_QUIT, NULL, 0);
    /* Whole. */
    buf_init(&in);
    buf_append(&in, out.data, out.len);
    assert_int_equal(smtpd_milter_take(&in, &cmd, &got, &why), 1);
    assert_int_equal(cmd, 'C');
    assert_int_equal(got.len, sizeof(data));
    assert_memory_equal(got.data, data, sizeof(data));
    assert_int_equal(smtpd_milter_take(&in, &cmd, &got, &why), 1);
    assert_int_equal(cmd, 'Q');
    assert_int_equal(got.len, 0);
    assert_int_equal(in.len, 0);
    assert_int_equal(smtpd_milter_take(&in, &cmd, &got, &why), 0);
    /* One byte at a time: nothing until the last byte of each. */
    for (i = 0; i < out.len; i++) {
        int rc;

        buf_append(&in, out.data + i, 1);
        rc = smtpd_milter_take(&in, &cmd, &got, &why);
        if (i == 5 + sizeof(data) - 1) {
            assert_int_equal(rc, 1);
            assert_int_equal(cmd, 'C');
        } else if (i == out.len - 1) {
            assert_int_equal(rc, 1);
            assert_int_equal(cmd, 'Q');
        } else {
            assert_int_equal(rc, 0);
        }
    }
    buf_free(&in);
    buf_free(&out);
    buf_free(&got);
}

static void
test_take_bad_length(void **state)
{
    static const char *const bad[] = {"\x00\x00\x00\x00", "\xff\xff\xff\xff",
                                      "\x00\x10\x00\x01"};
    size_t i;

    for (i = 0; i < N(bad); i++) {
        buf_t in;
        buf_t got;
        const char *why = NULL;
        int cmd;

        buf_init(&in);
        buf_init(&got);
        buf_append(&in, bad[i], 4);
        assert_int_equal(smtpd_milter_take(&in, &cmd, &got, &why), -1);
        assert_non_null(why);
        buf_free(&in);
        buf_free(&got);
    }
}

static const struct {
    int cmd;
    const char *data;
    size_t len;
    int ok;
    const char *name;
    const char *value;
    uint32_t index;
} replies[] = {
    {'c', "", 0, 1, NULL, NULL, 0},
    {'a', "", 0, 1, NULL, NULL, 0},
    {'r', "", 0, 1, NULL, NULL, 0},
    {'t', "", 0, 1, NULL, NULL, 0},
    {'y', "550 5.7.1 go away", 18, 1, NULL, NULL, 0},
    {'y', "421 4.7.0 bye", 14, 1, NULL, NULL, 0},
    {'y', "250 ok", 7, 0, NULL, NULL, 0},
    {'y', "550 no nul", 10, 0, NULL, NULL, 0},
    {'y', "5", 2, 0, NULL, NULL, 0},
    {'h', "X-Test\0value", 13, 1, "X-Test", "value", 0},
    {'h', "X-Test\0value", 12, 0, NULL, NULL, 0},
    {'h', "\0value", 7, 0, NULL, NULL, 0},
    {'h', "Bad Name\0v", 11, 0, NULL, NULL, 0},
    {'h', "Bad:Name\0v", 11, 0, NULL, NULL, 0},
    {'i', "\0\0\0\x02X-A\0b", 10, 1, "X-A", "b", 2},
    {'i', "\0\0", 2, 0, NULL, NULL, 0},
    {'m', "\0\0\0\x01Subject\0", 13, 1, "Subject", "", 1},
    {'+', "<a@b>", 6, 1, "<a@b>", NULL, 0},
    {'+', "", 1, 0, NULL, NULL, 0},
    {'-', "<a@b>", 5, 0, NULL, NULL, 0},
    {'2', "<a@b>\0NOTIFY=NEVER", 19, 1, "<a@b>", "NOTIFY=NEVER", 0},
    {'e', "<s@x>", 6, 1, "<s@x>", NULL, 0},
    {'q', "spam", 5, 1, "spam", NULL, 0},
    {'q', "spam", 4, 0, NULL, NULL, 0},
    {'b', "line\r\n", 6, 1, NULL, NULL, 0},
    {'O', "\0\0\0\x06\0\0\0\x01\0\0\0\x10", 12, 1, NULL, NULL, 0},
    {'O', "\0\0\0\x06", 4, 0, NULL, NULL, 0},
    {'Z', "", 0, 0, NULL, NULL, 0},
    {0, "", 0, 0, NULL, NULL, 0},
};

static void
test_parse_table(void **state)
{
    size_t i;

    for (i = 0; i < N(replies); i++) {
        struct smtpd_milter_reply r;
        const char *why = NULL;
        int rc = smtpd_milter_parse(replies[i].cmd, replies[i].data,
                                    replies[i].len, &r, &why);

        if (!replies[i].ok) {
            assert_int_equal(rc, -1);
            assert_non_null(why);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(r.cmd, replies[i].cmd);
        if (replies[i].name)
            assert_string_equal(r.name, replies[i].name);
        if (replies[i].value)
            assert_string_equal(r.value, replies[i].value);
        assert_int_equal(r.index, replies[i].index);
    }
}

static void
test_parse_optneg(void **state)
{
    struct smtpd_milter_reply r;
    const char *why = NULL;

    assert_int_equal(smtpd_milter_parse('O',
                                        "\0\0\0\x06\0\0\x01\x01\0\x10\0\x80",
                                        12, &r, &why),
                     0);
    assert_int_equal(r.version, 6);
    assert_int_equal(r.actions, 0x101);
    assert_int_equal(r.protocol, 0x100080);
}

static void
test_edits_message(void **state)
{
    cleanup_edits_t *e = cleanup_edits_new();
    buf_t msg;

    buf_init(&msg);
    buf_puts(&msg, "From: a@x\nSubject: one\n two\nTo: b@y\n"
                   "Subject: second\n\nbody\n");
    cleanup_edits_add(e, CLEANUP_EDIT_INS_HEADER, 0, "DKIM-Signature",
                      "v=1;\r\n\tb=xyz");
    cleanup_edits_add(e, CLEANUP_EDIT_CHG_HEADER, 2, "subject", "new");
    cleanup_edits_add(e, CLEANUP_EDIT_CHG_HEADER, 1, "To", "");
    cleanup_edits_add(e, CLEANUP_EDIT_ADD_HEADER, 0, "X-Last", "1");
    cleanup_edits_add(e, CLEANUP_EDIT_CHG_HEADER, 1, "X-Missing", "added");
    cleanup_edits_message(e, &msg);
    assert_string_equal(msg.data, "DKIM-Signature: v=1;\n\tb=xyz\n"
                                  "From: a@x\nSubject: one\n two\n"
                                  "subject: new\nX-Last: 1\n"
                                  "X-Missing: added\n\nbody\n");
    /* A body replacement with CRLF lines. */
    buf_puts(&e->body, "new\r\nbody\r\n");
    e->replace_body = 1;
    cleanup_edits_free(&e);
    e = cleanup_edits_new();
    buf_puts(&e->body, "new\r\nbody\r\n");
    e->replace_body = 1;
    cleanup_edits_message(e, &msg);
    assert_non_null(strstr(msg.data, "X-Missing: added\n\nnew\nbody\n"));
    assert_null(strstr(msg.data, "\r"));
    cleanup_edits_free(&e);
    assert_null(e);
    cleanup_edits_free(NULL);
    buf_free(&msg);
}

static void
test_edits_envelope(void **state)
{
    cleanup_edits_t *e = cleanup_edits_new();
    envelope_t *env = envelope_new();

    envelope_set(&env->sender, "old@x");
    envelope_add_rcpt(env, "a@x");
    envelope_add_rcpt(env, "B@x");
    envelope_add_rcpt(env, "c@x");
    cleanup_edits_add(e, CLEANUP_EDIT_DEL_RCPT, 0, "<b@x>", NULL);
    cleanup_edits_add(e, CLEANUP_EDIT_DEL_RCPT, 0, "<nobody@x>", NULL);
    cleanup_edits_add(e, CLEANUP_EDIT_ADD_RCPT, 0, "<d@x>", NULL);
    cleanup_edits_add(e, CLEANUP_EDIT_CHG_FROM, 0, "<new@x>", NULL);
    cleanup_edits_envelope(e, env);
    assert_int_equal(env->nrcpt, 3);
    assert_string_equal(env->rcpts[0].addr, "a@x");
    assert_string_equal(env->rcpts[1].addr, "c@x");
    assert_string_equal(env->rcpts[2].addr, "d@x");
    assert_string_equal(env->sender, "new@x");
    cleanup_edits_free(&e);
    envelope_free(&env);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packet_roundtrip),
        cmocka_unit_test(test_take_bad_length),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_optneg),
        cmocka_unit_test(test_edits_message),
        cmocka_unit_test(test_edits_envelope),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
