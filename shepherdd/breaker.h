/*
 * Resilience for calls to a cluster: exponential backoff with jitter, and a circuit breaker
 * per cluster. The breaker opens after `threshold` consecutive failures, refuses calls for
 * open_ms, then lets exactly one probe through (half-open): its success closes the breaker,
 * its failure opens it again for twice as long (at most max_open_ms). Callers decide what
 * counts as a failure (a 410 Expired from a watch does not).
 *
 * Times are passed in (monotonic ns) so the logic is testable; a breaker is safe to share
 * between threads (its mutex protects every field).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * The delay before retry number attempt (0-based): base_ms × 2^attempt, capped at max_ms, then
 * drawn uniformly from [delay/2, delay] with *rng (any seed; updated).
 */
int64_t shd_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint64_t *rng);

enum shd_breaker_state { SHD_BREAKER_CLOSED, SHD_BREAKER_OPEN, SHD_BREAKER_HALF_OPEN };

const char *shd_breaker_state_to_string(enum shd_breaker_state s); /* "closed" ... */

struct shd_breaker {
	pthread_mutex_t mu; /* protects everything below */
	int threshold;
	int64_t open_ms, max_open_ms, cur_open_ms;
	int failures; /* consecutive, while closed */
	enum shd_breaker_state state;
	uint64_t until_ns; /* open until */
	bool probing;      /* half-open: the one probe is out */
	uint64_t trips;    /* times it opened */
};

void shd_breaker_init(struct shd_breaker *b, int threshold, int64_t open_ms, int64_t max_open_ms);
void shd_breaker_release(struct shd_breaker *b);
/* May a call go out now? False while open, and in half-open for all but the one probe. */
bool shd_breaker_allow(struct shd_breaker *b, uint64_t now_ns);
void shd_breaker_success(struct shd_breaker *b);
void shd_breaker_failure(struct shd_breaker *b, uint64_t now_ns);
enum shd_breaker_state shd_breaker_get_state(struct shd_breaker *b, uint64_t now_ns);
