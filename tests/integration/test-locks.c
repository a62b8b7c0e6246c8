/*
 * The per-asset mutex against a real database: one holder at a time (also among eight racing
 * connections), RESOURCE_BUSY naming the holder, takeover after expiry, owner-only renew and
 * release, the reaper, and key validation.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "locks.h"
#include "testdb.h"

static void setup(void)
{
	testdb_setup("shp_locks");
}

TestSuite(locks, .init = setup, .fini = testdb_teardown, .timeout = 60);

/* The key of target in tenant sys-a for action restart, into one of a few rotating buffers. */
static const char *key_of(const char *target)
{
	static char keys[4][SHD_LOCK_KEY_MAX];
	static int next;
	struct shp_error err = SHP_ERROR_INIT;
	char *key = keys[next++ % 4];

	cr_assert_eq(shd_lock_key("sys-a", target, "restart", key, SHD_LOCK_KEY_MAX, &err), 0, "%s",
		     err.msg);
	return key;
}

Test(locks, one_holder_and_busy_names_it)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char *key = key_of("ns/a/vm-1");

	cr_assert_str_eq(key, "lock:v1:sys-a:ns/a/vm-1:restart");
	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "worker-1", 60000, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "worker-2", 60000, 0, &err),
		     -SHP_E_CONFLICT);
	cr_assert_str_eq(err.api_code, "RESOURCE_BUSY");
	cr_assert_str_eq(err.details[1].key, "owner");
	cr_assert_str_eq(err.details[1].value, "worker-1");
	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "worker-1", 60000, 0, &err), 0,
		     "the holder taking it again renews it");
	cr_assert_eq(shd_lock_acquire(testdb_conn, key_of("ns/a/vm-2"), "worker-2", 60000, 0, &err),
		     0, "another asset is another lock");
}

Test(locks, only_the_owner_renews_or_releases)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char *key = key_of("ns/a/vm-1");
	bool released = true;

	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "worker-1", 60000, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_lock_renew(testdb_conn, key, "worker-2", 60000, &err), -SHP_E_CONFLICT);
	cr_assert_eq(shd_lock_release(testdb_conn, key, "worker-2", &released, &err), 0);
	cr_assert(!released, "someone else's release leaves the lock");
	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "worker-2", 60000, 0, &err),
		     -SHP_E_CONFLICT);
	cr_assert_eq(shd_lock_renew(testdb_conn, key, "worker-1", 60000, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_lock_release(testdb_conn, key, "worker-1", &released, &err), 0);
	cr_assert(released);
	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "worker-2", 60000, 0, &err), 0,
		     "free again");
}

Test(locks, expired_lock_is_taken_over_and_reaped)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char *key = key_of("ns/a/vm-1");
	int n = -1;

	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "dead-worker", 50, 0, &err), 0, "%s",
		     err.msg);
	usleep(100000);
	cr_assert_eq(shd_lock_renew(testdb_conn, key, "dead-worker", 60000, &err), -SHP_E_CONFLICT,
		     "an expired lock cannot be renewed");
	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "worker-2", 60000, 0, &err), 0,
		     "an expired lock is taken over: %s", err.msg);
	cr_assert_eq(shd_lock_acquire(testdb_conn, key_of("ns/a/vm-9"), "dead-worker", 50, 0, &err),
		     0);
	usleep(100000);
	cr_assert_eq(shd_lock_reap(testdb_conn, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 1, "the reaper removes only the expired lock");
	cr_assert_eq(shd_lock_acquire(testdb_conn, key, "worker-3", 60000, 0, &err),
		     -SHP_E_CONFLICT, "the live one stays");
}

Test(locks, bad_keys_are_refused)
{
	char key[SHD_LOCK_KEY_MAX];
	char longtarget[600];

	cr_assert_lt(shd_lock_key("sys:a", "t", "restart", key, sizeof(key), NULL), 0);
	cr_assert_lt(shd_lock_key("sys-a", "", "restart", key, sizeof(key), NULL), 0);
	cr_assert_lt(shd_lock_key("sys-a", "t", "re:start", key, sizeof(key), NULL), 0);
	cr_assert_lt(shd_lock_key("sys-a", "t\n", "restart", key, sizeof(key), NULL), 0);
	memset(longtarget, 'x', sizeof(longtarget) - 1);
	longtarget[sizeof(longtarget) - 1] = '\0';
	cr_assert_lt(shd_lock_key("sys-a", longtarget, "restart", key, sizeof(key), NULL), 0);
	cr_assert_eq(shd_lock_key("sys-a", "ns:a/vm", "restart", key, sizeof(key), NULL), 0,
		     "a target may hold ':'");
}

static atomic_int winners;
static char race_key[SHD_LOCK_KEY_MAX];

static void *racer(void *arg)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *c = shd_db_connect(&testdb_config, &err);
	char owner[32];

	if (!c)
		return NULL;
	(void)snprintf(owner, sizeof(owner), "racer-%ld", (long)(intptr_t)arg);
	if (shd_lock_acquire(c, race_key, owner, 60000, 0, &err) == 0)
		atomic_fetch_add(&winners, 1);
	PQfinish(c);
	return NULL;
}

Test(locks, racing_connections_one_winner)
{
	pthread_t t[8];

	(void)snprintf(race_key, sizeof(race_key), "%s", key_of("ns/a/contended"));
	for (long i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&winners), 1, "exactly one of eight racers holds the lock");
}
