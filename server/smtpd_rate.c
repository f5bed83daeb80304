/* SPDX-License-Identifier: ISC */
/*
 * smtpd_rate: the clients' event counts, in a hash table under one
 * mutex.  An entry lives while its window is open: a lookup walking a
 * bucket drops the entries whose windows ended, so the table holds the
 * clients of the last anvil_rate_time_unit at most, and never more than
 * SMTPD_RATE_MAX of them.
 *
 * Threads: any; every call takes the mutex.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "server/smtpd_rate.h"

#define SMTPD_RATE_BUCKETS 4096
#define SMTPD_RATE_MAX 100000

struct smtpd_rate_entry {
    char addr[64];
    time_t start;
    long count[SMTPD_RATE_EVENTS];
    struct smtpd_rate_entry *next;
};

struct smtpd_rate {
    pthread_mutex_t lock;
    size_t n;
    struct smtpd_rate_entry *bucket[SMTPD_RATE_BUCKETS];
};

smtpd_rate_t *
smtpd_rate_new(void)
{
    smtpd_rate_t *r = mem_calloc(1, sizeof(*r));

    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void
smtpd_rate_free(smtpd_rate_t **rp)
{
    smtpd_rate_t *r = rp ? *rp : NULL;
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < SMTPD_RATE_BUCKETS; i++)
        while (r->bucket[i]) {
            struct smtpd_rate_entry *e = r->bucket[i];

            r->bucket[i] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&r->lock);
    free(r);
    *rp = NULL;
}

static unsigned
smtpd_rate_hash(const char *addr)
{
    unsigned h = 5381;

    for (; *addr; addr++)
        h = h * 33 + (unsigned char)*addr;
    return h % SMTPD_RATE_BUCKETS;
}

long
smtpd_rate_add(smtpd_rate_t *r, const char *addr, enum smtpd_rate_event ev,
               long unit, time_t now)
{
    struct smtpd_rate_entry **pp;
    struct smtpd_rate_entry *e;
    struct smtpd_rate_entry *found = NULL;
    long n = 0;

    pthread_mutex_lock(&r->lock);
    pp = &r->bucket[smtpd_rate_hash(addr)];
    while ((e = *pp) != NULL) {
        if (strcmp(e->addr, addr) == 0) {
            found = e;
            pp = &e->next;
        } else if (now - e->start >= unit) {
            *pp = e->next;
            free(e);
            r->n--;
        } else {
            pp = &e->next;
        }
    }
    if (found == NULL && r->n < SMTPD_RATE_MAX) {
        found = mem_calloc(1, sizeof(*found));
        snprintf(found->addr, sizeof(found->addr), "%s", addr);
        found->start = now;
        *pp = found;
        r->n++;
    }
    if (found != NULL) {
        if (now - found->start >= unit) {
            memset(found->count, 0, sizeof(found->count));
            found->start = now;
        }
        n = ++found->count[ev];
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}
