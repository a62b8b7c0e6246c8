/*
 * Backoff and the circuit breaker: delays grow, stay within their jitter band and their cap;
 * the breaker opens at its threshold, refuses while open, lets one probe through when
 * half-open, closes on the probe's success, reopens for longer on its failure; eight threads
 * racing for the probe get exactly one.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <criterion/criterion.h>

#include "breaker.h"

#define MS 1000000ull

Test(breaker, backoff_grows_with_jitter_and_cap)
{
	uint64_t rng = 42;

	for (int attempt = 0; attempt < 12; attempt++) {
		int64_t full = 100;
		for (int i = 0; i < attempt && full < 5000; i++)
			full *= 2;
		if (full > 5000)
			full = 5000;
		for (int k = 0; k < 200; k++) {
			int64_t d = shd_backoff_ms(attempt, 100, 5000, &rng);
			cr_assert(d >= full / 2 && d <= full,
				  "attempt %d: %lld not in [%lld, %lld]", attempt, (long long)d,
				  (long long)full / 2, (long long)full);
		}
	}
	cr_expect_eq(shd_backoff_ms(3, 0, 0, &rng), 0, "a zero cap means no wait");
	cr_expect_eq(shd_backoff_ms(1000000, 1, 60000, &rng) <= 60000, 1,
		     "huge attempts stay capped");
}

Test(breaker, opens_probes_and_closes)
{
	struct shd_breaker b;
	uint64_t t = 1000 * MS;

	shd_breaker_init(&b, 3, 1000, 4000);
	cr_assert(shd_breaker_allow(&b, t));
	shd_breaker_failure(&b, t);
	shd_breaker_failure(&b, t);
	cr_expect_eq(shd_breaker_get_state(&b, t), SHD_BREAKER_CLOSED, "below the threshold");
	shd_breaker_success(&b);
	shd_breaker_failure(&b, t);
	shd_breaker_failure(&b, t);
	cr_expect_eq(shd_breaker_get_state(&b, t), SHD_BREAKER_CLOSED,
		     "a success resets the count: failures must be consecutive");
	shd_breaker_failure(&b, t);
	cr_expect_eq(shd_breaker_get_state(&b, t), SHD_BREAKER_OPEN);
	cr_expect(!shd_breaker_allow(&b, t + 999 * MS), "open: calls are refused");
	cr_expect(shd_breaker_allow(&b, t + 1000 * MS), "half-open: one probe");
	cr_expect(!shd_breaker_allow(&b, t + 1001 * MS), "and only one");
	shd_breaker_failure(&b, t + 1100 * MS);
	cr_expect_eq(shd_breaker_get_state(&b, t + 1100 * MS), SHD_BREAKER_OPEN);
	cr_expect(!shd_breaker_allow(&b, t + 1100 * MS + 1999 * MS), "reopened for twice as long");
	cr_expect(shd_breaker_allow(&b, t + 1100 * MS + 2000 * MS));
	shd_breaker_success(&b);
	cr_expect_eq(shd_breaker_get_state(&b, t + 3100 * MS), SHD_BREAKER_CLOSED);
	cr_expect_eq(b.trips, 2);
	cr_expect_str_eq(shd_breaker_state_to_string(SHD_BREAKER_HALF_OPEN), "half-open");
	shd_breaker_release(&b);
}

Test(breaker, open_time_is_capped)
{
	struct shd_breaker b;
	uint64_t t = 0;

	shd_breaker_init(&b, 1, 1000, 3000);
	shd_breaker_failure(&b, t);
	for (int i = 0; i < 5; i++) {
		t += 10000 * MS;
		cr_assert(shd_breaker_allow(&b, t));
		shd_breaker_failure(&b, t);
	}
	cr_expect_eq(b.cur_open_ms, 3000);
	cr_expect(shd_breaker_allow(&b, t + 3000 * MS));
	shd_breaker_release(&b);
}

static struct shd_breaker racing;
static atomic_int probes;

static void *race(void *arg)
{
	(void)arg;
	if (shd_breaker_allow(&racing, 5000 * MS))
		atomic_fetch_add(&probes, 1);
	return NULL;
}

Test(breaker, one_probe_among_racing_threads)
{
	pthread_t t[8];

	shd_breaker_init(&racing, 1, 1000, 1000);
	shd_breaker_failure(&racing, 0);
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, race, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	cr_expect_eq(atomic_load(&probes), 1);
	shd_breaker_release(&racing);
}
