/* SPDX-License-Identifier: ISC */
/*
 * dnsmasq: start and stop a private dnsmasq for the DNS tests.  The
 * port is found by binding port 0 (UDP, then the same port for TCP,
 * which dnsmasq also serves); a server that exits at once (the port was
 * taken in between) is retried on another port.  Readiness is a query
 * for ready.test, a record the helper always adds.  Not thread-safe:
 * tests start and stop servers from their main thread.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/dns.h"
#include "t/dnsmasq.h"

#define DNSMASQ_MAX_ARGS 64

/* The dnsmasq program, installing dnsmasq-base first if need be;
 * returns its path or NULL. */
static const char *
dnsmasq_program(void)
{
    static const char *const paths[] = {"/usr/sbin/dnsmasq",
                                        "/usr/local/sbin/dnsmasq",
                                        "/sbin/dnsmasq"};
    size_t i;
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
            if (access(paths[i], X_OK) == 0)
                return paths[i];
        if (attempt == 0 && geteuid() == 0 &&
            access("/usr/bin/apt-get", X_OK) == 0) {
            fprintf(stderr, "dnsmasq: not found; installing dnsmasq-base\n");
            if (system("DEBIAN_FRONTEND=noninteractive apt-get install -y "
                       "-q dnsmasq-base >/dev/null 2>&1") != 0)
                fprintf(stderr, "dnsmasq: apt-get install failed\n");
        }
    }
    return NULL;
}

/* A loopback port free for both UDP and TCP right now, or -1. */
static int
dnsmasq_free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int port = -1;
    int u;
    int t;

    if ((u = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
        return -1;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(u, (struct sockaddr *)&sin, &len) == 0) {
        if ((t = socket(AF_INET, SOCK_STREAM, 0)) >= 0) {
            if (bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
                port = ntohs(sin.sin_port);
            close(t);
        }
    }
    close(u);
    return port;
}

/* Run dnsmasq on port; returns its PID or -1. */
static pid_t
dnsmasq_spawn(const char *prog, const char *dir, int port,
              const char *const *records)
{
    char opt_port[32];
    char opt_pid[512];
    char opt_log[512];
    const char *argv[DNSMASQ_MAX_ARGS];
    size_t n = 0;
    pid_t pid;

    snprintf(opt_port, sizeof(opt_port), "--port=%d", port);
    snprintf(opt_pid, sizeof(opt_pid), "--pid-file=%s/dnsmasq.pid", dir);
    snprintf(opt_log, sizeof(opt_log), "--log-facility=%s/dnsmasq.log",
             dir);
    argv[n++] = prog;
    argv[n++] = "--keep-in-foreground";
    argv[n++] = "--conf-file=/dev/null";
    argv[n++] = opt_port;
    argv[n++] = opt_pid;
    argv[n++] = opt_log;
    argv[n++] = "--listen-address=127.0.0.1";
    argv[n++] = "--bind-interfaces";
    argv[n++] = "--no-resolv";
    argv[n++] = "--no-hosts";
    argv[n++] = "--local=/test/";
    argv[n++] = "--host-record=ready.test,127.0.0.1";
    for (; records && *records && n + 1 < DNSMASQ_MAX_ARGS; records++)
        argv[n++] = *records;
    argv[n] = NULL;
    if ((pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Wait up to about five seconds for the server to answer ready.test;
 * returns 0, or -1 if it exited or never answered. */
static int
dnsmasq_wait_ready(struct dnsmasq *dm)
{
    struct timespec pause = {0, 50 * 1000 * 1000};
    int i;

    dns_set_server(dm->server);
    for (i = 0; i < 100; i++) {
        struct dns_rr *rr = NULL;
        int status;

        if (waitpid(dm->pid, &status, WNOHANG) == dm->pid) {
            dm->pid = -1;
            return -1;
        }
        if (dns_lookup("ready.test", ns_t_a, &rr, NULL, 0) == DNS_OK) {
            dns_rr_free(&rr);
            return 0;
        }
        nanosleep(&pause, NULL);
    }
    return -1;
}

/* Copy dnsmasq's log to stderr, to say why it did not start. */
static void
dnsmasq_show_log(const char *dir)
{
    char path[512];
    char line[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/dnsmasq.log", dir);
    fprintf(stderr, "dnsmasq: did not start; its log %s:\n", path);
    if ((fp = fopen(path, "r")) == NULL)
        return;
    while (fgets(line, sizeof(line), fp))
        fprintf(stderr, "  %s", line);
    fclose(fp);
}

int
dnsmasq_start(struct dnsmasq *dm, const char *dir,
              const char *const *records)
{
    const char *prog = dnsmasq_program();
    int attempt;

    dm->pid = -1;
    dm->port = -1;
    dm->server[0] = '\0';
    if (prog == NULL) {
        fprintf(stderr, "dnsmasq: not installed and cannot be installed\n");
        return -1;
    }
    for (attempt = 0; attempt < 3; attempt++) {
        if ((dm->port = dnsmasq_free_port()) < 0)
            continue;
        snprintf(dm->server, sizeof(dm->server), "127.0.0.1:%d", dm->port);
        if ((dm->pid = dnsmasq_spawn(prog, dir, dm->port, records)) < 0)
            continue;
        if (dnsmasq_wait_ready(dm) == 0)
            return 0;
        dnsmasq_stop(dm);
    }
    dnsmasq_show_log(dir);
    return -1;
}

void
dnsmasq_stop(struct dnsmasq *dm)
{
    if (dm->pid > 0) {
        kill(dm->pid, SIGTERM);
        while (waitpid(dm->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    dm->pid = -1;
    dns_set_server(NULL);
}
