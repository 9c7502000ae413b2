/*
 * notify.h - telling systemd how the agent is (sd_notify's protocol,
 * spoken directly: one datagram to $NOTIFY_SOCKET), without libsystemd.
 */
#ifndef CAIRN_AGENT_NOTIFY_H
#define CAIRN_AGENT_NOTIFY_H

#include <stdint.h>

/*
 * Send state ("READY=1", "STATUS=backing up 12 files", "WATCHDOG=1",
 * "STOPPING=1"; several lines may be joined with '\n') to the service
 * manager.  0 when sent or when not run by one ($NOTIFY_SOCKET unset);
 * CAIRN_EIO if the socket refused it.  Thread safe.
 */
int agent_notify(const char *state);

/*
 * The watchdog interval systemd expects keep-alives within, in
 * microseconds ($WATCHDOG_USEC, when $WATCHDOG_PID is unset or ours), or 0
 * when there is no watchdog.  Send "WATCHDOG=1" at half this interval.
 */
uint64_t agent_watchdog_usec(void);

#endif
