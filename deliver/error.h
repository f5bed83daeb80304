/* SPDX-License-Identifier: ISC */
/*
 * error: the pseudo transports of transport_maps that deliver nowhere,
 * as Postfix's error(8) and discard(8): "error:text" bounces with text,
 * "retry:text" defers with it, "discard:text" reports the mail sent.
 * A text that begins with an enhanced status code ("5.1.1 No such
 * user") supplies it.
 */
#ifndef TERN_ERROR_H
#define TERN_ERROR_H

#include "deliver/delivery.h"

/* Bounce every recipient of req with the next hop as reason. */
void error_deliver(struct delivery_req *req);

/* Defer every recipient of req with the next hop as reason. */
void error_retry(struct delivery_req *req);

/* Report every recipient of req delivered, and deliver nothing. */
void error_discard(struct delivery_req *req);

#endif
