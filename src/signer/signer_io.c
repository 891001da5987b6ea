/*
 * Whole-buffer reads and writes on the signer's stream sockets, shared by
 * the signer process and the network process's client.
 */
#include "signer/signer_int.h"
#include "signer/signer_proto.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

ssize_t signer_read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    ssize_t r;

    while (got < len) {
        r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int signer_read_frame(int fd, unsigned char *buf, size_t cap, size_t *len)
{
    size_t got = 0, want = SIGNER_HDR_LEN;
    ssize_t r;

    while (got < want) {
        r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return got == 0 ? 0 : -2;
        got += (size_t)r;
        if (want == SIGNER_HDR_LEN && got >= SIGNER_HDR_LEN) {
            if (cap < SIGNER_HDR_LEN
                || !signer_frame_len(buf, cap - SIGNER_HDR_LEN, len))
                return -2;
            want = SIGNER_HDR_LEN + *len;
        }
    }
    return got == want ? 1 : -2;
}

int signer_write_full(int fd, const void *buf, size_t len)
{
    size_t off = 0;
    ssize_t r;

    while (off < len) {
        r = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        off += (size_t)r;
    }
    return 1;
}

int signer_chan_cpu(size_t i)
{
    cpu_set_t set;
    int cpu, k = 0, n;

    if (sched_getaffinity(0, sizeof(set), &set) != 0
        || (n = CPU_COUNT(&set)) < 2)
        return -1;
    for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set))
            continue;
        if ((size_t)k++ == i % (size_t)n)
            return cpu;
    }
    return -1;
}

void signer_chan_pin(size_t i)
{
    cpu_set_t set;
    int cpu = signer_chan_cpu(i);

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}
