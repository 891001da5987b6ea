/*
 * Connection bookkeeping for the HTTP front end: overall deadlines for
 * reading a request's headers and its body (independent of activity), and
 * the global connection limit that closes the oldest idle connection first.
 */
#include "http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util/log.h"

/* How often the reaper looks for connections past their deadline (ms). */
#define HTTP_REAP_MS 200

/* Monotonic time in milliseconds. */
static long long http_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Unlinks |c| from whatever list holds it (caller holds the lock). */
static void http_conn_unlink(struct http_conn *c)
{
    if (c->next != NULL) {
        c->prev->next = c->next;
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
}

/* Appends |c| to the list headed by the sentinel |head| (lock held). */
static void http_conn_append(struct http_conn *head, struct http_conn *c)
{
    c->prev = head->prev;
    c->next = head;
    head->prev->next = c;
    head->prev = c;
}

/* Closes |c| from outside MHD (lock held): shutdown() makes MHD's worker
 * see the end of the stream and close and free the connection itself. The
 * descriptor is still open: MHD calls the CLOSED notification, which takes
 * this lock, before it closes the socket. */
static void http_conn_kill(struct http_conn *c)
{
    http_conn_unlink(c);
    c->phase = HTTP_CONN_CLOSING;
    (void)shutdown(c->fd, SHUT_RDWR);
}

/* Closes the connections of list |head| whose phase began more than
 * |limit_ms| ago; returns how many (lock held). */
static unsigned http_conns_reap_list(struct http_conn *head, long long now,
                                     long long limit_ms)
{
    unsigned n = 0;

    /* lists are in the order the phases began: stop at the first young one */
    while (head->next != head && now - head->next->since >= limit_ms) {
        http_conn_kill(head->next);
        n++;
    }
    return n;
}

static void *http_conns_reaper(void *arg)
{
    struct http_conns *cs = arg;

    pthread_mutex_lock(&cs->mu);
    while (!cs->stop) {
        struct timespec ts;
        long long now;
        unsigned h, b;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += HTTP_REAP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&cs->cv, &cs->mu, &ts);
        if (cs->stop)
            break;
        now = http_now_ms();
        h = http_conns_reap_list(&cs->wait, now,
                                 (long long)cs->header_timeout * 1000);
        b = http_conns_reap_list(&cs->body, now,
                                 (long long)cs->body_timeout * 1000);
        cs->header_timeouts += h;
        cs->body_timeouts += b;
        if (h + b > 0)
            log_msg(LOG_DEBUG, "http: closed %u connection(s) past the header "
                    "deadline, %u past the body deadline", h, b);
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

int http_conns_init(struct http_conns *cs, unsigned max_conns,
                    unsigned header_timeout, unsigned body_timeout)
{
    memset(cs, 0, sizeof(*cs));
    cs->max = max_conns;
    cs->header_timeout = header_timeout;
    cs->body_timeout = body_timeout;
    cs->wait.prev = cs->wait.next = &cs->wait;
    cs->body.prev = cs->body.next = &cs->body;
    if (pthread_mutex_init(&cs->mu, NULL) != 0)
        return 0;
    if (pthread_cond_init(&cs->cv, NULL) != 0) {
        pthread_mutex_destroy(&cs->mu);
        return 0;
    }
    if (pthread_create(&cs->reaper, NULL, http_conns_reaper, cs) != 0) {
        pthread_cond_destroy(&cs->cv);
        pthread_mutex_destroy(&cs->mu);
        return 0;
    }
    cs->started = 1;
    return 1;
}

void http_conns_stop(struct http_conns *cs)
{
    if (!cs->started)
        return;
    pthread_mutex_lock(&cs->mu);
    cs->stop = 1;
    pthread_cond_signal(&cs->cv);
    pthread_mutex_unlock(&cs->mu);
    pthread_join(cs->reaper, NULL);
    cs->started = 0;
}

void http_conns_free(struct http_conns *cs)
{
    http_conns_stop(cs);
    pthread_cond_destroy(&cs->cv);
    pthread_mutex_destroy(&cs->mu);
}

struct http_conn *http_conn_open(struct http_conns *cs, int fd)
{
    struct http_conn *c = calloc(1, sizeof(*c));
    int refused = 0;

    pthread_mutex_lock(&cs->mu);
    cs->count++;
    if (cs->count > cs->max) {
        /* at the limit: the connection waiting longest for a request (idle
         * keep-alive, or dripping its headers) makes room; if every other
         * one is busy with a request, the newcomer is refused */
        if (cs->wait.next != &cs->wait) {
            http_conn_kill(cs->wait.next);
            cs->evicted++;
        } else {
            refused = 1;
            cs->refused++;
        }
    }
    if (c == NULL || refused) {
        /* untracked (out of memory) or refused: counted until CLOSED */
        if (refused)
            (void)shutdown(fd, SHUT_RDWR);
        if (c == NULL) {
            cs->count--;
            pthread_mutex_unlock(&cs->mu);
            return NULL;
        }
        c->fd = fd;
        c->phase = HTTP_CONN_CLOSING;
        pthread_mutex_unlock(&cs->mu);
        return c;
    }
    c->fd = fd;
    c->phase = HTTP_CONN_WAIT;
    c->since = http_now_ms();
    http_conn_append(&cs->wait, c);
    pthread_mutex_unlock(&cs->mu);
    return c;
}

void http_conn_phase(struct http_conns *cs, struct http_conn *c,
                     enum http_conn_phase phase)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&cs->mu);
    if (c->phase != HTTP_CONN_CLOSING && c->phase != phase) {
        http_conn_unlink(c);
        c->phase = phase;
        c->since = http_now_ms();
        if (phase == HTTP_CONN_WAIT)
            http_conn_append(&cs->wait, c);
        else if (phase == HTTP_CONN_BODY)
            http_conn_append(&cs->body, c);
    }
    pthread_mutex_unlock(&cs->mu);
}

void http_conn_close(struct http_conns *cs, struct http_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&cs->mu);
    http_conn_unlink(c);
    cs->count--;
    pthread_mutex_unlock(&cs->mu);
    free(c);
}

void http_conns_stats(struct http_conns *cs, struct http_conn_stats *st)
{
    pthread_mutex_lock(&cs->mu);
    st->open = cs->count;
    st->evicted = cs->evicted;
    st->refused = cs->refused;
    st->header_timeouts = cs->header_timeouts;
    st->body_timeouts = cs->body_timeouts;
    pthread_mutex_unlock(&cs->mu);
}

int http_addr_loopback(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)sa;
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)
               || (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)
                   && s6->sin6_addr.s6_addr[12] == 127);
    }
    return 0;
}
