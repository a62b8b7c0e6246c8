/*
 * systemd readiness notification, written directly: the sd_notify protocol is one datagram
 * with "KEY=VALUE" lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET ('@' = abstract).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "shepherdd.h"

int shd_sd_notify(const char *state, struct shp_error *err)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	size_t n;
	socklen_t len;
	ssize_t sent;

	if (!path || !*path)
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return shp_error_set(err, SHP_E_INVAL, "NOTIFY_SOCKET '%s' is not usable", path);
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return shp_error_errno(err, errno, "creating the notification socket");
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	if (sent < 0)
		return shp_error_errno(err, errno, "notifying '%s'", path);
	return 0;
}
