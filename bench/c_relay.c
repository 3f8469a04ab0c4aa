/* c_relay: the ceiling bench/fanout.py compares the node with.
 *
 * The node's RTC forwarding job, done the cheapest way we know: recvmmsg RTP from one UDP socket,
 * and for each packet and each destination rewrite what the node rewrites per player (SSRC: one
 * per destination; sequence number: contiguous per destination, offset from the first packet it
 * got; the payload type kept) and sendmmsg from a second socket (the node also sends from a
 * shared socket other than the publisher's port). The rewritten 12-byte header is a per-message
 * iovec and the rest of the packet is shared: no per-destination copy in user space. The sending
 * socket sets DF (IP_MTU_DISCOVER = IP_PMTUDISC_DO), as the node's shared socket does: RTP is never
 * fragmented, and the kernel skips picking an IP ID per datagram (__ip_select_ident, ~8 % of the
 * relay's CPU in a perf profile without it).
 *
 * usage: c_relay --dests FILE [--port P] [--max-seconds S]
 *   FILE: one "IPv4 PORT" per line (0 lines is allowed: a baseline for memory per destination).
 * Prints "PORT <p> RSS <before> <after>" once listening (RssAnon bytes before and after loading the
 * destinations: memory per destination, measured like the node's, in one process); on SIGTERM/SIGINT
 * or after --max-seconds prints one JSON object of counters on stdout and exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define VLEN 64      /* packets per recvmmsg */
#define OUT 1024     /* messages per sendmmsg (UIO_MAXIOV) */
#define BUFSZ 2048

typedef struct {
    struct sockaddr_in addr;
    uint32_t ssrc;
    uint16_t seq_offset;
    uint16_t last_out_seq;
    int started;
} dest_t;

static volatile sig_atomic_t stop = 0;
static void on_stop(int s) { (void)s; stop = 1; }

static long rss_anon(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *dests_file = NULL;
    int port = 0;
    double max_seconds = 600;
    static struct option opts[] = {{"dests", 1, 0, 'd'}, {"port", 1, 0, 'p'}, {"max-seconds", 1, 0, 'm'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd') dests_file = optarg;
        else if (c == 'p') port = atoi(optarg);
        else if (c == 'm') max_seconds = atof(optarg);
        else {
            fprintf(stderr, "usage: c_relay --dests FILE [--port P] [--max-seconds S]\n");
            return 2;
        }
    }
    if (!dests_file) {
        fprintf(stderr, "usage: c_relay --dests FILE [--port P] [--max-seconds S]\n");
        return 2;
    }

    int in = socket(AF_INET, SOCK_DGRAM, 0), out = socket(AF_INET, SOCK_DGRAM, 0);
    int rcvbuf = 4 << 20; /* what the node asks for on its publisher ports */
    setsockopt(in, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int df = IP_PMTUDISC_DO; /* as the node's shared socket (sfu/media/_fastpath_py.py dont_fragment) */
    if (setsockopt(out, IPPROTO_IP, IP_MTU_DISCOVER, &df, sizeof df) < 0) {
        perror("c_relay: IP_MTU_DISCOVER");
        return 1;
    }
    struct timeval tv = {0, 200000};
    setsockopt(in, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    if (bind(in, (struct sockaddr *)&local, sizeof local) < 0) {
        perror("c_relay: bind");
        return 1;
    }
    socklen_t sl = sizeof local;
    getsockname(in, (struct sockaddr *)&local, &sl);

    static uint8_t inbuf[VLEN][BUFSZ];
    static struct iovec iniov[VLEN];
    static struct mmsghdr inmsg[VLEN];
    for (int i = 0; i < VLEN; i++) {
        iniov[i].iov_base = inbuf[i];
        iniov[i].iov_len = BUFSZ;
        inmsg[i].msg_hdr.msg_iov = &iniov[i];
        inmsg[i].msg_hdr.msg_iovlen = 1;
    }
    static uint8_t hdr[OUT][12];
    static struct iovec outiov[OUT][2];
    static struct mmsghdr outmsg[OUT];
    memset(hdr, 0, sizeof hdr); /* touch everything now: RSS does not depend on traffic */
    memset(outiov, 0, sizeof outiov);
    memset(outmsg, 0, sizeof outmsg);

    FILE *f = fopen(dests_file, "r");
    if (!f) {
        perror("c_relay: dests");
        return 1;
    }
    long rss_before = rss_anon();
    size_t ndest = 0, cap = 16;
    dest_t *dests = calloc(cap, sizeof *dests);
    char ip[64];
    int p;
    while (fscanf(f, "%63s %d", ip, &p) == 2) {
        if (ndest == cap) dests = realloc(dests, (cap *= 2) * sizeof *dests);
        dest_t *d = &dests[ndest];
        memset(d, 0, sizeof *d);
        d->addr.sin_family = AF_INET;
        d->addr.sin_port = htons((uint16_t)p);
        if (inet_pton(AF_INET, ip, &d->addr.sin_addr) != 1) {
            fprintf(stderr, "c_relay: bad address %s\n", ip);
            return 1;
        }
        d->ssrc = 0x10000000u + (uint32_t)ndest;
        ndest++;
    }
    long rss_after = rss_anon();
    fclose(f);

    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("PORT %d RSS %ld %ld\n", ntohs(local.sin_port), rss_before, rss_after);
    fflush(stdout);

    uint64_t deadline = now_ns() + (uint64_t)(max_seconds * 1e9);
    uint64_t pkts_in = 0, pkts_out = 0, send_errors = 0, malformed = 0;
    while (!stop && now_ns() < deadline) {
        int r = recvmmsg(in, inmsg, VLEN, MSG_WAITFORONE, NULL);
        if (r <= 0) continue; /* timeout or signal */
        int nout = 0;
        for (int m = 0; m < r; m++) {
            uint8_t *pk = inbuf[m];
            unsigned len = inmsg[m].msg_len;
            if (len < 12 || (pk[0] >> 6) != 2) {
                malformed++;
                continue;
            }
            pkts_in++;
            uint16_t in_seq = (uint16_t)((pk[2] << 8) | pk[3]);
            for (size_t i = 0; i < ndest; i++) {
                dest_t *d = &dests[i];
                if (!d->started) d->started = 1, d->seq_offset = 0;
                uint16_t seq = (uint16_t)(in_seq + d->seq_offset);
                d->last_out_seq = seq;
                uint8_t *h = hdr[nout];
                memcpy(h, pk, 4);
                h[2] = (uint8_t)(seq >> 8);
                h[3] = (uint8_t)seq;
                memcpy(h + 4, pk + 4, 4);
                h[8] = (uint8_t)(d->ssrc >> 24), h[9] = (uint8_t)(d->ssrc >> 16);
                h[10] = (uint8_t)(d->ssrc >> 8), h[11] = (uint8_t)d->ssrc;
                outiov[nout][0].iov_base = h;
                outiov[nout][0].iov_len = 12;
                outiov[nout][1].iov_base = pk + 12;
                outiov[nout][1].iov_len = len - 12;
                struct msghdr *mh = &outmsg[nout].msg_hdr;
                mh->msg_name = &d->addr;
                mh->msg_namelen = sizeof d->addr;
                mh->msg_iov = outiov[nout];
                mh->msg_iovlen = 2;
                if (++nout == OUT) {
                    for (int off = 0; off < nout;) {
                        int s = sendmmsg(out, outmsg + off, (unsigned)(nout - off), 0);
                        if (s < 0) {
                            if (errno != EINTR) send_errors++, off++;
                            continue;
                        }
                        off += s, pkts_out += (uint64_t)s;
                    }
                    nout = 0;
                }
            }
        }
        for (int off = 0; off < nout;) {
            int s = sendmmsg(out, outmsg + off, (unsigned)(nout - off), 0);
            if (s < 0) {
                if (errno != EINTR) send_errors++, off++;
                continue;
            }
            off += s, pkts_out += (uint64_t)s;
        }
    }
    printf("{\"destinations\": %zu, \"packets_in\": %llu, \"packets_out\": %llu, \"send_errors\": %llu, "
           "\"malformed\": %llu}\n",
           ndest, (unsigned long long)pkts_in, (unsigned long long)pkts_out, (unsigned long long)send_errors,
           (unsigned long long)malformed);
    return 0;
}
