/* rtp_sink: the players' side of bench/fanout.py.
 *
 * Receives on inherited, already bound UDP sockets (`--fds a,b,c,...`: one per player, so the
 * players' ports stay the same across runs) with epoll + recvmmsg, and for packets of run `--run`
 * counts per player: received, duplicates, late (latency > `--late-us`), and checks the per-player
 * rewrite (one SSRC per player; sequence number - index constant per player). Packets of other
 * runs are counted as stale and dropped.
 *
 * The stamp rtp_gen puts at payload offset 16: u32 magic 'SFUB', u32 run id, u32 index in the run,
 * u64 CLOCK_MONOTONIC ns at send, u64 CLOCK_MONOTONIC ns at which the packet's frame's first
 * packet was sent (offset 16 + 20). Latency is receipt - send, where receipt is the kernel's
 * timestamp of the datagram reaching the player's socket (SO_TIMESTAMPNS, turned to CLOCK_MONOTONIC
 * at each read), not when this process got round to it: the sink shares its core with the
 * generator, and its own scheduling delays are not the target's. How long datagrams waited for the
 * sink is reported apart (`sink_wait_*`); without a kernel timestamp, receipt is the read's time.
 * With `--hold-us H` (a target that holds each frame H after its first packet arrives, as an L3
 * node with a fixed target delay does) latency is the time *past that release*: receipt - frame's
 * first send - H. A negative one (the target released early, which it must never do) counts as
 * "early" and goes into the histogram as 0. The plain receipt - send is kept too ("total_*").
 * Latency goes into a histogram (1 us buckets to 65.5 ms, then 64 us buckets to 4.26 s) for the
 * whole run and for its first and last quarter (by send index).
 *
 * Protocol with the harness: prints "READY" once it has drained what was queued; SIGUSR1 means
 * "the generator is done": it then stops once every expected packet arrived, or nothing arrived
 * for `--drain-ms`, or after `--max-drain-s`; `--deadline-s` bounds the whole run.
 * Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x53465542u
#define STAMP_OFF 16
#define STAMP_LEN 28 /* magic, run, index, send ns, frame's first send ns */
#define VLEN 64
#define BUFSZ 256 /* RTP header, extensions and the stamp: MSG_TRUNC spares copying the rest */
#define CTLSZ 64  /* ancillary data per datagram: its kernel timestamp */
#define LIN 65536
#define NB (LIN + 65536)

static volatile sig_atomic_t gen_done = 0;
static void on_usr1(int s) { (void)s; gen_done = 1; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t real_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + (int64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC - CLOCK_REALTIME in ns, from a realtime read bracketed by two monotonic ones no
 * more than 5 us apart (the sink shares its core: it may lose it between two reads, and an offset
 * taken across that gap would move receipts earlier by it); `prev` when three tries fail. The two
 * clocks are slewed alike, so the offset moves only when the wall clock is stepped. */
static int64_t mono_minus_real(int64_t prev) {
    for (int i = 0; i < 3; i++) {
        uint64_t a = now_ns();
        int64_t r = real_ns();
        uint64_t b = now_ns();
        if (b - a < 5000) return (int64_t)(a + (b - a) / 2) - r;
    }
    return prev;
}

/* the datagram's kernel receive timestamp (CLOCK_REALTIME ns), or 0 */
static int64_t kernel_stamp(struct msghdr *h) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (int64_t)ts.tv_sec * 1000000000ll + (int64_t)ts.tv_nsec;
        }
    return 0;
}

static unsigned long long wait_ns(void) { /* time runnable but not running, from /proc/self/schedstat */
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen("/proc/self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2) wait = 0;
        fclose(f);
    }
    return wait;
}

typedef struct {
    uint32_t b[NB];
    uint64_t n;
} hist_t;

static void hist_add(hist_t *h, int64_t ns) {
    uint64_t us = ns <= 0 ? 0 : (uint64_t)ns / 1000u;
    uint64_t i = us < LIN ? us : LIN + (((us - LIN) >> 6) < 65535 ? ((us - LIN) >> 6) : 65535);
    h->b[i]++;
    h->n++;
}

static double hist_pct(const hist_t *h, double q) {
    if (!h->n) return -1;
    uint64_t want = (uint64_t)(q * (double)(h->n - 1)) + 1, acc = 0;
    for (uint64_t i = 0; i < NB; i++) {
        acc += h->b[i];
        if (acc >= want) return i < LIN ? (double)i : (double)(LIN + ((i - LIN) << 6));
    }
    return -1;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fprintf(stderr, "usage: rtp_sink --fds FD,FD,... --run ID --count N [--late-us U] [--drain-ms M]\n"
                    "                [--max-drain-s S] [--deadline-s S] [--hold-us H]\n");
    exit(2);
}

int main(int argc, char **argv) {
    char *fdlist = NULL;
    uint32_t run = 0;
    long count = -1;
    double late_us = 20000, drain_ms = 200, max_drain_s = 3, deadline_s = 30, hold_us = 0;
    int held = 0; /* --hold-us given */
    static struct option opts[] = {{"fds", 1, 0, 'f'},      {"run", 1, 0, 'u'},       {"count", 1, 0, 'c'},
                                   {"late-us", 1, 0, 'l'},  {"drain-ms", 1, 0, 'd'},  {"max-drain-s", 1, 0, 'm'},
                                   {"deadline-s", 1, 0, 'D'}, {"hold-us", 1, 0, 'H'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': fdlist = optarg; break;
        case 'u': run = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'c': count = atol(optarg); break;
        case 'l': late_us = atof(optarg); break;
        case 'd': drain_ms = atof(optarg); break;
        case 'm': max_drain_s = atof(optarg); break;
        case 'D': deadline_s = atof(optarg); break;
        case 'H': hold_us = atof(optarg), held = 1; break;
        default: usage();
        }
    }
    if (!fdlist || count < 1 || hold_us < 0) usage();
    const int64_t hold_ns = (int64_t)(hold_us * 1000);

    int nfds = 1;
    for (char *p = fdlist; *p; p++) nfds += *p == ',';
    int *fds = calloc((size_t)nfds, sizeof *fds);
    nfds = 0;
    for (char *tok = strtok(fdlist, ","); tok; tok = strtok(NULL, ",")) fds[nfds++] = atoi(tok);

    /* per player state */
    uint64_t *got = calloc((size_t)nfds, sizeof *got);
    uint32_t *ssrc = calloc((size_t)nfds, sizeof *ssrc), *seqd = calloc((size_t)nfds, sizeof *seqd);
    uint8_t *seen_any = calloc((size_t)nfds, 1);
    size_t words = ((size_t)nfds * (size_t)count + 63) / 64;
    uint64_t *bitmap = calloc(words, 8);
    hist_t *all = calloc(1, sizeof *all), *q1 = calloc(1, sizeof *q1), *q4 = calloc(1, sizeof *q4);
    hist_t *total = calloc(1, sizeof *total); /* receipt - send, whatever --hold-us */
    if (!fds || !got || !ssrc || !seqd || !seen_any || !bitmap || !all || !q1 || !q4 || !total) {
        fprintf(stderr, "rtp_sink: out of memory\n");
        return 1;
    }

    int ep = epoll_create1(0);
    int on = 1;
    for (int i = 0; i < nfds; i++) {
        if (setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0) {
            perror("rtp_sink: setsockopt(SO_TIMESTAMPNS)");
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            perror("rtp_sink: epoll_ctl");
            return 1;
        }
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);

    static uint8_t bufs[VLEN][BUFSZ];
    static uint8_t ctls[VLEN][CTLSZ] __attribute__((aligned(8)));
    static struct iovec iov[VLEN];
    static struct mmsghdr msgs[VLEN];
    for (int i = 0; i < VLEN; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = BUFSZ;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    hist_t *wait = calloc(1, sizeof *wait); /* read - kernel timestamp: how long datagrams waited for the sink */
    uint64_t unstamped = 0;
    if (!wait) {
        fprintf(stderr, "rtp_sink: out of memory\n");
        return 1;
    }
    uint64_t stale = 0, bad = 0, dups = 0, late = 0, received = 0, ssrc_changes = 0, seq_errors = 0, early = 0;
    int64_t earliest = 0; /* the most negative latency past release (ns), with --hold-us */
    uint64_t first_rx = 0, last_rx = 0, min_lat = UINT64_MAX;
    const uint64_t expected = (uint64_t)nfds * (uint64_t)count, late_ns = (uint64_t)(late_us * 1000);
    const uint64_t q_lo = (uint64_t)count / 4, q_hi = (uint64_t)count - (uint64_t)count / 4;

    /* drain whatever an earlier run left queued, then tell the harness we are listening */
    for (int i = 0; i < nfds; i++)
        for (int r; (r = recvmmsg(fds[i], msgs, VLEN, MSG_DONTWAIT, NULL)) > 0;) stale += (uint64_t)r;
    printf("READY\n");
    fflush(stdout);

    int64_t to_mono = (int64_t)now_ns() - real_ns();
    for (int i = 0; i < 100; i++) to_mono = mono_minus_real(to_mono);
    uint64_t start = now_ns(), deadline = start + (uint64_t)(deadline_s * 1e9), done_at = 0;
    uint64_t last_activity = start;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_ns();
        if (t > deadline) break;
        if (gen_done && !done_at) done_at = t, last_activity = t > last_activity ? t : last_activity;
        if (done_at) {
            if (received >= expected) break;
            if (t - last_activity > (uint64_t)(drain_ms * 1e6)) break;
            if (t - done_at > (uint64_t)(max_drain_s * 1e9)) break;
        }
        int n = epoll_wait(ep, evs, 256, 10);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("rtp_sink: epoll_wait");
            break;
        }
        for (int e = 0; e < n; e++) {
            uint32_t pi = evs[e].data.u32;
            int fd = fds[pi];
            for (;;) {
                for (int m = 0; m < VLEN; m++) {
                    msgs[m].msg_hdr.msg_control = ctls[m];
                    msgs[m].msg_hdr.msg_controllen = CTLSZ;
                }
                int r = recvmmsg(fd, msgs, VLEN, MSG_DONTWAIT | MSG_TRUNC, NULL);
                if (r <= 0) break;
                uint64_t read_at = now_ns();
                to_mono = mono_minus_real(to_mono);
                last_activity = read_at;
                for (int m = 0; m < r; m++) {
                    uint8_t *p = bufs[m];
                    int64_t k = kernel_stamp(&msgs[m].msg_hdr);
                    uint64_t rx = read_at;
                    if (k) {
                        int64_t kr = k + to_mono;
                        if (kr < (int64_t)read_at) rx = (uint64_t)kr;
                    } else {
                        unstamped++;
                    }
                    unsigned len = msgs[m].msg_len < BUFSZ ? msgs[m].msg_len : BUFSZ; /* real length with MSG_TRUNC */
                    if (len < 12 || (p[0] >> 6) != 2) { bad++; continue; }
                    unsigned off = 12 + 4u * (p[0] & 0x0f);
                    if ((p[0] & 0x10) && len >= off + 4) off += 4 + 4u * (unsigned)((p[off + 2] << 8) | p[off + 3]);
                    if (len < off + STAMP_OFF + STAMP_LEN) { bad++; continue; }
                    uint32_t w[3];
                    uint64_t stamp, frame_first;
                    memcpy(w, p + off + STAMP_OFF, sizeof w);
                    memcpy(&stamp, p + off + STAMP_OFF + 12, 8);
                    memcpy(&frame_first, p + off + STAMP_OFF + 20, 8);
                    if (w[0] != MAGIC) { bad++; continue; }
                    if (w[1] != run) { stale++; continue; }
                    uint32_t idx = w[2];
                    if (idx >= (uint64_t)count) { bad++; continue; }
                    size_t bit = (size_t)pi * (size_t)count + idx;
                    if (bitmap[bit / 64] & (1ull << (bit % 64))) { dups++; continue; }
                    bitmap[bit / 64] |= 1ull << (bit % 64);
                    received++;
                    got[pi]++;
                    uint32_t s = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
                    uint32_t d = (uint32_t)(((p[2] << 8) | p[3]) - idx) & 0xffffu;
                    if (!seen_any[pi]) {
                        seen_any[pi] = 1, ssrc[pi] = s, seqd[pi] = d;
                    } else {
                        ssrc_changes += s != ssrc[pi];
                        seq_errors += d != seqd[pi];
                    }
                    int64_t lat = (int64_t)(rx - stamp);
                    hist_add(total, lat);
                    hist_add(wait, (int64_t)(read_at - rx));
                    if (held) { /* past the frame's release: its first packet's send + the hold */
                        lat = (int64_t)(rx - frame_first) - hold_ns;
                        if (lat < 0) {
                            early++;
                            if (lat < earliest) earliest = lat;
                            lat = 0;
                        }
                    }
                    if (lat > 0 && (uint64_t)lat < min_lat) min_lat = (uint64_t)lat;
                    if (lat > (int64_t)late_ns) late++;
                    hist_add(all, lat);
                    if (idx < q_lo) hist_add(q1, lat);
                    if (idx >= q_hi) hist_add(q4, lat);
                    if (!first_rx) first_rx = rx;
                    last_rx = rx;
                }
                if (r < VLEN) break;
            }
        }
    }

    uint64_t minp = UINT64_MAX, maxp = 0;
    int nseen = 0;
    for (int i = 0; i < nfds; i++) {
        if (got[i] < minp) minp = got[i];
        if (got[i] > maxp) maxp = got[i];
    }
    uint32_t *ss = calloc((size_t)nfds, sizeof *ss);
    for (int i = 0; i < nfds; i++)
        if (seen_any[i]) ss[nseen++] = ssrc[i];
    qsort(ss, (size_t)nseen, sizeof *ss, cmp_u32);
    int distinct = 0;
    for (int i = 0; i < nseen; i++) distinct += i == 0 || ss[i] != ss[i - 1];

    printf("{\"players\": %d, \"count\": %ld, \"expected\": %llu, \"received\": %llu, \"late\": %llu, "
           "\"duplicates\": %llu, \"stale\": %llu, \"malformed\": %llu, "
           "\"p50_us\": %.0f, \"p90_us\": %.0f, \"p99_us\": %.0f, \"max_us\": %.0f, \"min_us\": %.1f, "
           "\"q1_p50_us\": %.0f, \"q4_p50_us\": %.0f, \"first_rx_ns\": %llu, \"last_rx_ns\": %llu, "
           "\"min_per_player\": %llu, \"max_per_player\": %llu, \"distinct_ssrcs\": %d, "
           "\"ssrc_changes\": %llu, \"seq_errors\": %llu, \"timed_out\": %s, \"wait_ns\": %llu, "
           "\"hold_us\": %.0f, \"early\": %llu, \"early_max_us\": %.1f, \"total_p50_us\": %.0f, "
           "\"total_p90_us\": %.0f, \"total_p99_us\": %.0f, \"total_max_us\": %.0f, \"sink_wait_p50_us\": %.0f, "
           "\"sink_wait_p99_us\": %.0f, \"sink_wait_max_us\": %.0f, \"unstamped\": %llu}\n",
           nfds, count, (unsigned long long)expected, (unsigned long long)received, (unsigned long long)late,
           (unsigned long long)dups, (unsigned long long)stale, (unsigned long long)bad, hist_pct(all, .50),
           hist_pct(all, .90), hist_pct(all, .99), hist_pct(all, 1.0), min_lat == UINT64_MAX ? -1 : min_lat / 1e3,
           hist_pct(q1, .50), hist_pct(q4, .50), (unsigned long long)first_rx, (unsigned long long)last_rx,
           (unsigned long long)minp, (unsigned long long)maxp, distinct, (unsigned long long)ssrc_changes,
           (unsigned long long)seq_errors, now_ns() > deadline ? "true" : "false", wait_ns(), hold_us,
           (unsigned long long)early, -earliest / 1e3, hist_pct(total, .50), hist_pct(total, .90), hist_pct(total, .99),
           hist_pct(total, 1.0), hist_pct(wait, .50), hist_pct(wait, .99), hist_pct(wait, 1.0),
           (unsigned long long)unstamped);
    return 0;
}
