/*
 * The power batch of shepherd vm start|stop|restart --selector (cmd-batch.c): POST
 * /vms/batch/power with the operation and the selector, then what batch submit prints (and,
 * with wait, follows). 0 or -code with ctx->err set.
 */
#pragma once

#include <stdbool.h>

struct cli_ctx;

int cli_batch_power(struct cli_ctx *ctx, const char *op, const char *selector, bool yes, bool wait);
