/* SPDX-License-Identifier: ISC */
/*
 * local_cmd: running a command of an alias.  /bin/sh -c runs it with
 * the environment it is given and nothing else, the message on its
 * standard input, in a session of its own with every signal at its
 * default, from "/"; its output (the first 512 bytes, stdout and stderr
 * together) is kept for the reason, and past the time limit its whole
 * process group is killed.  The outcome is worded as Postfix's local
 * words it: exit 0 delivers, 75 (EX_TEMPFAIL), a signal or the time
 * limit defers, any other status bounces with the output.
 *
 * It runs commands as whoever calls it: the delivery worker (as
 * mail_owner) or the privileged process once it has become
 * default_privs (local_priv.c).
 *
 * Threads: any; each call has its own pipes and child.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deliver/local_cmd.h"
#include "lib/buf.h"
#include "lib/clock.h"

#define LOCAL_CMD_OUTPUT_MAX 512
#define LOCAL_CMD_EX_TEMPFAIL 75

/* Start /bin/sh -c cmd with pipes for its input and output.  Returns
 * its PID, or -1 with errno. */
static pid_t
local_cmd_spawn(const char *cmd, char *const *envp, int *in, int *out)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    sigset_t all;
    int pin[2];
    int pout[2];
    char *argv[4];
    pid_t pid = -1;
    int rc;

    if (pipe2(pin, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(pout, O_CLOEXEC) < 0) {
        close(pin[0]);
        close(pin[1]);
        return -1;
    }
    argv[0] = (char *)"sh";
    argv[1] = (char *)"-c";
    argv[2] = (char *)cmd;
    argv[3] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, "/");
    posix_spawnattr_init(&attr);
    /* Workers block every signal and the daemon ignores SIGPIPE: the
     * command gets an empty mask, default actions and a session of its
     * own, so that a time limit can kill everything it started. */
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETSID);
    rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, (char **)envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pin[0]);
    close(pout[1]);
    if (rc != 0) {
        close(pin[1]);
        close(pout[0]);
        errno = rc;
        return -1;
    }
    *in = pin[1];
    *out = pout[0];
    return pid;
}

/* Feed data to the command and collect its first output until it
 * closes its output or the deadline passes.  Returns 0, or -1 on
 * timeout. */
static int
local_cmd_talk(int in, int out, const char *data, size_t len, buf_t *output,
           int64_t deadline)
{
    size_t off = 0;

    fcntl(in, F_SETFL, O_NONBLOCK);
    while (out >= 0) {
        struct pollfd pfd[2];
        int64_t left = deadline - clock_mono_ms();
        nfds_t n = 0;
        int rc;

        if (left <= 0)
            return -1;
        pfd[n].fd = out;
        pfd[n++].events = POLLIN;
        if (in >= 0) {
            pfd[n].fd = in;
            pfd[n++].events = POLLOUT;
        }
        rc = poll(pfd, n, left > 1000 ? 1000 : (int)left);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (in >= 0 && n == 2 && (pfd[1].revents & (POLLOUT | POLLERR |
                                                    POLLHUP))) {
            ssize_t w = write(in, data + off, len - off);

            if (w > 0)
                off += (size_t)w;
            /* A command that stops reading (EPIPE) is judged by its
             * exit status alone. */
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == len) {
                close(in);
                in = -1;
            }
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char chunk[4096];
            ssize_t r = read(out, chunk, sizeof(chunk));

            if (r > 0 && output->len < LOCAL_CMD_OUTPUT_MAX)
                buf_append(output, chunk,
                           (size_t)r < LOCAL_CMD_OUTPUT_MAX - output->len
                               ? (size_t)r
                               : LOCAL_CMD_OUTPUT_MAX - output->len);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
                close(out);
                out = -1;
            }
        }
    }
    if (in >= 0)
        close(in);
    return 0;
}

/* Wait for pid until the deadline; returns its status or -1. */
static int
local_cmd_reap(pid_t pid, int64_t deadline, int *status)
{
    for (;;) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        pid_t w = waitpid(pid, status, WNOHANG);

        if (w == pid)
            return 0;
        if (w < 0 && errno != EINTR)
            return -1;
        if (clock_mono_ms() >= deadline)
            return -1;
        nanosleep(&pause, NULL);
    }
}

/* The command's output on one line, for a reason. */
static void
local_cmd_output(const buf_t *output, char *out, size_t outlen)
{
    size_t i;
    size_t j = 0;

    for (i = 0; i < output->len && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)output->data[i];

        out[j++] = c < 32 || c == 127 ? ' ' : (char)c;
    }
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

void
local_cmd_run(const char *cmd, char *const *envp, const char *data,
              size_t len, long long limit, struct delivery_result *r)
{
    int64_t deadline = clock_mono_ms() + (limit > 0 ? limit : 1) * 1000;
    char text[LOCAL_CMD_OUTPUT_MAX + 1];
    buf_t output;
    int status = 0;
    int in = -1;
    int out = -1;
    pid_t pid;

    buf_init(&output);
    pid = local_cmd_spawn(cmd, envp, &in, &out);
    if (pid < 0) {
        delivery_set(r, DELIVERY_DEFER, "4.3.0",
                     "cannot run command \"%s\": %s", cmd, strerror(errno));
        buf_free(&output);
        return;
    }
    if (local_cmd_talk(in, out, data, len, &output, deadline) < 0 ||
        local_cmd_reap(pid, deadline, &status) < 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        delivery_set(r, DELIVERY_DEFER, "4.3.0",
                     "Command time limit exceeded: \"%s\"", cmd);
        buf_free(&output);
        return;
    }
    local_cmd_output(&output, text, sizeof(text));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        delivery_set(r, DELIVERY_SENT, "2.0.0", "delivered to command: %s",
                     cmd);
    else if (WIFEXITED(status) &&
             WEXITSTATUS(status) == LOCAL_CMD_EX_TEMPFAIL)
        delivery_set(r, DELIVERY_DEFER, "4.3.0",
                     "temporary failure. Command output: %s", text);
    else if (WIFEXITED(status))
        delivery_set(r, DELIVERY_BOUNCE, "5.3.0",
                     "Command died with status %d: \"%s\". Command output: "
                     "%s",
                     WEXITSTATUS(status), cmd, text);
    else
        delivery_set(r, DELIVERY_DEFER, "4.3.0",
                     "Command died with signal %d: \"%s\"",
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0, cmd);
    buf_free(&output);
}
