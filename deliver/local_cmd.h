/* SPDX-License-Identifier: ISC */
/*
 * local_cmd: run the command of an alias and word its outcome as
 * Postfix's local does (local_cmd.c says how).
 */
#ifndef TERN_LOCAL_CMD_H
#define TERN_LOCAL_CMD_H

#include <stddef.h>

#include "deliver/delivery.h"

/* Run cmd under /bin/sh -c with envp as its whole environment and the
 * len bytes at data on its standard input, for at most limit seconds;
 * the outcome goes into r. */
void local_cmd_run(const char *cmd, char *const *envp, const char *data,
                   size_t len, long long limit, struct delivery_result *r);

#endif
