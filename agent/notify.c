/*
 * notify.c - sd_notify's datagram protocol (see notify.h).  The socket
 * path may be abstract ("@name": a leading NUL byte in sun_path).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cairn/err.h"
#include "notify.h"

int agent_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t salen;
    size_t plen, len = strlen(state);
    ssize_t n;
    int fd;

    if (path == NULL || path[0] == '\0')
        return 0;
    plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
        return CAIRN_EINVAL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return CAIRN_EIO;
    do
        n = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa,
                   salen);
    while (n < 0 && errno == EINTR);
    close(fd);
    return (n == (ssize_t)len) ? 0 : CAIRN_EIO;
}

uint64_t agent_watchdog_usec(void)
{
    const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    unsigned long long v;
    char *end;

    if (us == NULL || us[0] == '\0')
        return 0;
    if (pid != NULL && pid[0] != '\0' &&
        strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    errno = 0;
    v = strtoull(us, &end, 10);
    if (errno != 0 || *end != '\0')
        return 0;
    return (uint64_t)v;
}
