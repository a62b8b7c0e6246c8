/*
 * The notification inbox's daemon side (api-inbox.c): the retention of old notifications, run
 * as the periodic job notify.retention. The HTTP handlers are declared in shepherdd.h; the
 * senders in gov.h. See docs/internals/notifications.md.
 */
#pragma once

#include <stdint.h>

#include <libpq-fe.h>

#include "cleanup.h"

struct shp_error;
struct shd_queue;

#define SHD_INBOX_RETENTION_KIND "notify.retention"
#define SHD_INBOX_BATCH_DEFAULT 1000 /* rows one retention statement deletes */
#define SHD_INBOX_BATCH_MAX 10000

/*
 * Delete at most batch notifications created more than days days ago, oldest first, in one
 * statement on conn (autocommit, or the caller's transaction); *ret_deleted says how many.
 * SHP_E_INVAL for days < 1 or a batch out of 1..SHD_INBOX_BATCH_MAX.
 */
int shd_inbox_retention(PGconn *conn, int days, int batch, int64_t *ret_deleted,
			struct shp_error *err) SHP_MUSTCHECK;

/*
 * Register notify.retention and run it daily. Its args may override retention_days (default
 * *retention_days, which must outlive q), batch and max_batches (statements per run; what is
 * left waits for the next run). Batches are repeated while full, with a heartbeat.
 */
int shd_inbox_register(struct shd_queue *q, const int *retention_days,
		       struct shp_error *err) SHP_MUSTCHECK;
