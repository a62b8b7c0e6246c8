/*
 * Notifications: the sender interface's one V1 implementation, the inbox, and the choice of
 * sender made at start-up. A notification is a row of notifications, written in the caller's
 * transaction so it commits with what it announces; approvers of an environment are the users
 * holding platform-admin or approver there (bindings, mappings, users.is_admin); environment
 * -1 (a request without one: systems, services) means any environment.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "gov.h"

static const char *env_name(int env)
{
	return env == 0 ? "test" : env == 1 ? "prod" : NULL;
}

/* The notification's columns as text parameters: type, title, body, data, ticket_id. */
static int params_of(const struct shd_notification *n, char **ret_data, char *ticket, size_t tsize,
		     struct shp_error *err)
{
	*ret_data = n->data ? json_dumps(n->data, JSON_COMPACT) : NULL;
	if (n->data && !*ret_data)
		return shp_error_set(err, SHP_E_NOMEM, "encoding a notification");
	if (n->ticket_id > 0)
		(void)snprintf(ticket, tsize, "%" PRId64, n->ticket_id);
	return 0;
}

/*
 * The row, or (with a coalescing key) the user's unread row of the same type and key from the
 * last coalesce_s seconds brought up to date instead, its count one higher.
 */
static const char sql_to_user[] =
	"WITH prev AS (SELECT id FROM notifications"
	"   WHERE $7::text IS NOT NULL AND user_id = $1 AND type = $2 AND coalesce_key = $7"
	"     AND read_at IS NULL AND created_at > now() - make_interval(secs => $8::int)"
	"   ORDER BY id DESC LIMIT 1 FOR UPDATE),"
	" upd AS (UPDATE notifications n SET title = $3, body = $4,"
	"   data = coalesce($5::jsonb, '{}'), ticket_id = $6::bigint, count = n.count + 1,"
	"   updated_at = now() FROM prev WHERE n.id = prev.id RETURNING n.id)"
	" INSERT INTO notifications (user_id, type, title, body, data, ticket_id, coalesce_key)"
	" SELECT $1, $2, $3, $4, coalesce($5::jsonb, '{}'), $6::bigint, $7"
	"  WHERE NOT EXISTS (SELECT 1 FROM upd)";

static int inbox_to_user(PGconn *conn, int64_t user_id, const struct shd_notification *n,
			 struct shp_error *err)
{
	_cleanup_free_ char *data = NULL;
	char uid[24], ticket[24] = "", window[16];

	if (n->coalesce_key && (strlen(n->coalesce_key) > 128 || n->coalesce_s <= 0))
		return shp_error_set(err, SHP_E_INVAL, "invalid coalescing of a notification");
	if (params_of(n, &data, ticket, sizeof(ticket), err) < 0)
		return -err->code;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, user_id);
	(void)snprintf(window, sizeof(window), "%d", n->coalesce_key ? n->coalesce_s : 0);
	if (shd_db_command(conn, sql_to_user, 8,
			   (const char *[]){uid, n->type, n->title, n->body ? n->body : "", data,
					    ticket[0] ? ticket : NULL, n->coalesce_key, window},
			   err) < 0)
		return shp_error_prefix(err, "notifying user %" PRId64, user_id);
	return 0;
}

static int inbox_to_approvers(PGconn *conn, int env, const struct shd_notification *n,
			      struct shp_error *err)
{
	_cleanup_free_ char *data = NULL;
	char ticket[24] = "";

	if (env != -1 && !env_name(env))
		return shp_error_set(err, SHP_E_INVAL, "no environment %d to notify approvers of",
				     env);
	if (params_of(n, &data, ticket, sizeof(ticket), err) < 0)
		return -err->code;
	/* a disabled user approves nothing, so is not told either */
	if (shd_db_command(
		    conn,
		    "INSERT INTO notifications (user_id, type, title, body, data, ticket_id)"
		    " SELECT DISTINCT b.user_id, $2, $3, $4, coalesce($5::jsonb, '{}'), $6::bigint"
		    "   FROM effective_role_bindings b JOIN users u ON u.id = b.user_id"
		    "  WHERE b.role IN ('platform-admin', 'approver')"
		    "    AND ($1::environment IS NULL OR $1 = ANY (b.allowed_environments))"
		    "    AND u.disabled_at IS NULL",
		    6,
		    (const char *[]){env_name(env), n->type, n->title, n->body ? n->body : "", data,
				     ticket[0] ? ticket : NULL},
		    err) < 0)
		return shp_error_prefix(err, "notifying the approvers of %s",
					env_name(env) ? env_name(env) : "any environment");
	return 0;
}

const struct shd_notify_sender shd_notify_inbox = {
	.name = "inbox",
	.to_user = inbox_to_user,
	.to_approvers = inbox_to_approvers,
};

/* ---- the sender chosen at start-up ---------------------------------------------------- */

static const struct shd_notify_sender *const senders[] = {&shd_notify_inbox, NULL};

/* Written once by main before any thread exists, read-only afterwards (like the config). */
static const struct shd_notify_sender *chosen = &shd_notify_inbox;

const struct shd_notify_sender *shd_notify_sender(void)
{
	return chosen;
}

int shd_notify_use(const char *name, struct shp_error *err)
{
	for (size_t i = 0; senders[i]; i++)
		if (strcmp(senders[i]->name, name) == 0) {
			chosen = senders[i];
			return 0;
		}
	shp_error_set(err, SHP_E_INVAL, "unknown notification sender '%.64s' (known: inbox)", name);
	shp_error_detail(err, "field", "notifications.sender");
	return -SHP_E_INVAL;
}
