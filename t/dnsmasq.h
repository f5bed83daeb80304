/* SPDX-License-Identifier: ISC */
/*
 * dnsmasq: a private nameserver for the tests, Debian's dnsmasq on a
 * free loopback port, answering for names under .test from the records
 * on its command line and NXDOMAIN for any other .test name.  The
 * helper installs the package (dnsmasq-base) when it is missing and it
 * can, starts the server, waits until it answers, and points lib/dns at
 * it with dns_set_server(); stopping it ends that process alone, by PID.
 */
#ifndef TERN_T_DNSMASQ_H
#define TERN_T_DNSMASQ_H

#include <sys/types.h>

struct dnsmasq {
    pid_t pid;
    int port;
    char server[32]; /* "127.0.0.1:PORT", as dns_set_server() takes it */
};

/* Start dnsmasq with records, a NULL-terminated list of its options
 * ("--mx-host=...", "--host-record=...", ...), writing its log and PID
 * file into dir.  Returns 0 and fills dm, or -1 (with the reason on
 * stderr) if dnsmasq cannot be installed or started. */
int dnsmasq_start(struct dnsmasq *dm, const char *dir,
                  const char *const *records);

/* Stop the dnsmasq of dm (SIGTERM, then wait for it) and send queries
 * back to the system's nameservers; accepts a dm that never started. */
void dnsmasq_stop(struct dnsmasq *dm);

#endif
