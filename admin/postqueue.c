/* SPDX-License-Identifier: ISC */
/*
 * postqueue: Postfix's queue control command for the running ternd.
 *
 *   postqueue [-c FILE] -p        the queue as mailq shows it
 *   postqueue [-c FILE] -j        one JSON object per message and line
 *   postqueue [-c FILE] -f        try all deferred mail now
 *   postqueue [-c FILE] -s SITE   try deferred mail for SITE now
 *
 * -c names a configuration file (tern has no config directory), as -C
 * does for sendmail; without it $TERN_CONFIG, then the default path.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/client.h"
#include "admin/mailq.h"

static void
postqueue_usage(void)
{
    fprintf(stderr, "usage: postqueue [-c FILE] -p | -j | -f | -s SITE\n");
    exit(64);
}

int
main(int argc, char **argv)
{
    const char *given = NULL;
    const char *site = NULL;
    config_t *cfg;
    int mode = 0;
    int opt;
    int rc;

    while ((opt = getopt(argc, argv, "c:C:pjfs:v")) != -1) {
        switch (opt) {
        case 'c':
        case 'C':
            given = optarg;
            break;
        case 'p':
        case 'j':
        case 'f':
            if (mode)
                postqueue_usage();
            mode = opt;
            break;
        case 's':
            if (mode)
                postqueue_usage();
            mode = 's';
            site = optarg;
            break;
        case 'v':
            break;
        default:
            postqueue_usage();
        }
    }
    if (!mode || optind != argc)
        postqueue_usage();
    if ((cfg = client_load_config("postqueue",
                                  client_config_path(given))) == NULL)
        return 78;
    if (mode == 'p' || mode == 'j')
        rc = mailq_print(cfg, "postqueue", mode == 'j', stdout);
    else
        rc = mailq_flush(cfg, "postqueue", site);
    config_unref(&cfg);
    return rc;
}
