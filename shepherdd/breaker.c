/*
 * Backoff with jitter and the per-cluster circuit breaker (see breaker.h for the rules).
 */
#include "config.h"

#include "breaker.h"
#include "util.h"

/* xorshift64*: small, fast, good enough for jitter; never 0 state. */
static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

int64_t shd_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint64_t *rng)
{
	int64_t d = base_ms > 0 ? base_ms : 1;

	for (int i = 0; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	if (d <= 1)
		return d;
	return d / 2 + (int64_t)(next_random(rng) % (uint64_t)(d - d / 2 + 1));
}

const char *shd_breaker_state_to_string(enum shd_breaker_state s)
{
	static const char *const names[] = {"closed", "open", "half-open"};

	return shp_enum_to_string(names, SHP_ARRAY_SIZE(names), (int)s);
}

void shd_breaker_init(struct shd_breaker *b, int threshold, int64_t open_ms, int64_t max_open_ms)
{
	*b = (struct shd_breaker){.threshold = threshold > 0 ? threshold : 1,
				  .open_ms = open_ms > 0 ? open_ms : 1,
				  .max_open_ms = max_open_ms >= open_ms ? max_open_ms : open_ms};
	b->cur_open_ms = b->open_ms;
	pthread_mutex_init(&b->mu, NULL);
}

void shd_breaker_release(struct shd_breaker *b)
{
	pthread_mutex_destroy(&b->mu);
}

/* Under mu: an open breaker whose time is up becomes half-open. */
static void settle(struct shd_breaker *b, uint64_t now_ns)
{
	if (b->state == SHD_BREAKER_OPEN && now_ns >= b->until_ns) {
		b->state = SHD_BREAKER_HALF_OPEN;
		b->probing = false;
	}
}

static void trip(struct shd_breaker *b, uint64_t now_ns)
{
	b->state = SHD_BREAKER_OPEN;
	b->until_ns = now_ns + (uint64_t)b->cur_open_ms * 1000000u;
	b->trips++;
}

bool shd_breaker_allow(struct shd_breaker *b, uint64_t now_ns)
{
	bool ok;

	pthread_mutex_lock(&b->mu);
	settle(b, now_ns);
	ok = b->state == SHD_BREAKER_CLOSED || (b->state == SHD_BREAKER_HALF_OPEN && !b->probing);
	if (ok && b->state == SHD_BREAKER_HALF_OPEN)
		b->probing = true;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void shd_breaker_success(struct shd_breaker *b)
{
	pthread_mutex_lock(&b->mu);
	b->state = SHD_BREAKER_CLOSED;
	b->failures = 0;
	b->probing = false;
	b->cur_open_ms = b->open_ms;
	pthread_mutex_unlock(&b->mu);
}

void shd_breaker_failure(struct shd_breaker *b, uint64_t now_ns)
{
	pthread_mutex_lock(&b->mu);
	settle(b, now_ns);
	if (b->state == SHD_BREAKER_HALF_OPEN) {
		/* the probe failed: open again, for longer */
		b->cur_open_ms =
			b->cur_open_ms * 2 > b->max_open_ms ? b->max_open_ms : b->cur_open_ms * 2;
		b->probing = false;
		trip(b, now_ns);
	} else if (b->state == SHD_BREAKER_CLOSED && ++b->failures >= b->threshold) {
		b->failures = 0;
		trip(b, now_ns);
	}
	pthread_mutex_unlock(&b->mu);
}

enum shd_breaker_state shd_breaker_get_state(struct shd_breaker *b, uint64_t now_ns)
{
	enum shd_breaker_state s;

	pthread_mutex_lock(&b->mu);
	settle(b, now_ns);
	s = b->state;
	pthread_mutex_unlock(&b->mu);
	return s;
}
