/*
 * Scope-bound cleanup (systemd style): locals declared with _cleanup_(fn) are released when they
 * leave scope; ownership leaves a scope only through TAKE_PTR / TAKE_FD.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(shp_freep)
#define _cleanup_close_ _cleanup_(shp_closep)
#define _cleanup_fclose_ _cleanup_(shp_fclosep)

#define SHP_MUSTCHECK __attribute__((warn_unused_result))
#define SHP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define SHP_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define SHP_UNUSED __attribute__((unused))

#ifdef SHP_UNIT_TESTING
#define SHP_STATIC
#else
#define SHP_STATIC static
#endif

#define SHP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Hand out a pointer and forget it locally, so no cleanup runs on it. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		typeof(p) _ptr_ = (p);                                                             \
		(p) = NULL;                                                                        \
		_ptr_;                                                                             \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})

/* Defines static inline void <func>p(type *p) that calls func(*p) when *p is set. */
#define SHP_DEFINE_CLEANUP(type, func)                                                             \
	static inline void func##p(type *p)                                                        \
	{                                                                                          \
		if (*p)                                                                            \
			(void)func(*p);                                                            \
	}

static inline void shp_freep(void *p)
{
	free(*(void **)p);
}

static inline void shp_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		(void)close(*fd);
		errno = saved;
	}
}

static inline void shp_fclosep(FILE **f)
{
	if (*f)
		(void)fclose(*f);
}

/* jansson ships its own json_decrefp (and json_auto_t) for _cleanup_. */
