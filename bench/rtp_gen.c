/* rtp_gen: paced RTP sender for bench/fanout.py.
 *
 * Sends `--count` RTP packets (VP8-shaped, `--size` bytes) from an inherited, already bound UDP
 * socket (`--fd`, so the node sees one source address across runs) to `--dest`, at `--rate`
 * packets/s, in sendmmsg batches of `--batch`, sleeping (never spinning: the sink shares the
 * core) until each batch's due time. Every packet carries, at payload offset 16, a stamp:
 *   u32 magic 'SFUB', u32 run id, u32 index in this run, u64 CLOCK_MONOTONIC ns at send,
 *   u64 CLOCK_MONOTONIC ns at which its frame's first packet was sent (at offset 16 + 20; the
 *   same as the send time for a frame's first packet). A receiver that knows a node holds each
 *   frame for H after its first packet arrives measures the node's latency past that release
 *   as receipt - frame's first send - H (rtp_sink --hold-us).
 * Packet g (global number, `--first` + index) has sequence number g mod 2^16. The run is cut into
 * frames of `--frame-packets` packets (it starts on a frame boundary): marker bit on a frame's last
 * packet, one RTP timestamp per frame (the 90 kHz CLOCK_MONOTONIC time its first packet was sent,
 * so a receiver's jitter estimate sees real arrival jitter only). A frame is a VP8 keyframe when it
 * is the run's first, when the last keyframe is `--keyframe-interval` seconds old, or when a PLI or
 * FIR (RTCP PT 206, FMT 1 or 4) was read from the socket before it: a publisher answers keyframe
 * requests.
 * Bounded: stops after --count packets or --max-seconds, whichever comes first.
 * Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#define MAGIC 0x53465542u /* "SFUB" */
#define STAMP_OFF 16      /* stamp offset in the RTP payload (after the VP8 headers) */
#define STAMP_LEN 28      /* magic, run, index, send ns, frame's first send ns */
#define MAX_BATCH 256
#define MAX_SIZE 1500

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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

/* RTCP read from the socket (the node's feedback): 1 if it holds a PLI or FIR */
static int keyframe_requested(const uint8_t *p, long len) {
    while (len >= 4) {
        long plen = 4 * (((long)p[2] << 8 | p[3]) + 1);
        if ((p[0] >> 6) != 2 || plen > len) return 0;
        if (p[1] == 206 && ((p[0] & 0x1f) == 1 || (p[0] & 0x1f) == 4)) return 1;
        p += plen, len -= plen;
    }
    return 0;
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: rtp_gen --fd FD --dest IP:PORT --rate PPS --count N [--max-seconds S] [--size B]\n"
            "               [--batch B] [--run ID] [--first G] [--ssrc X] [--pt PT]\n"
            "               [--frame-packets K] [--keyframe-interval S]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int fd = -1, size = 1200, batch = 1, pt = 96, frame_packets = 8;
    double rate = 0, max_seconds = 10, keyframe_interval = 1.0;
    long count = -1;
    uint32_t run = 1, ssrc = 0x5346u;
    uint64_t first = 0;
    char *dest = NULL;
    static struct option opts[] = {
        {"fd", 1, 0, 'f'},           {"dest", 1, 0, 'd'},  {"rate", 1, 0, 'r'},
        {"count", 1, 0, 'c'},        {"max-seconds", 1, 0, 'm'}, {"size", 1, 0, 's'},
        {"batch", 1, 0, 'b'},        {"run", 1, 0, 'u'},   {"first", 1, 0, 'g'},
        {"ssrc", 1, 0, 'x'},         {"pt", 1, 0, 'p'},    {"frame-packets", 1, 0, 'k'},
        {"keyframe-interval", 1, 0, 'K'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': fd = atoi(optarg); break;
        case 'd': dest = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 'c': count = atol(optarg); break;
        case 'm': max_seconds = atof(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'u': run = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'g': first = strtoull(optarg, NULL, 0); break;
        case 'x': ssrc = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'p': pt = atoi(optarg); break;
        case 'k': frame_packets = atoi(optarg); break;
        case 'K': keyframe_interval = atof(optarg); break;
        default: usage();
        }
    }
    if (fd < 0 || !dest || rate <= 0 || count < 0 || size < 12 + STAMP_OFF + STAMP_LEN || size > MAX_SIZE ||
        batch < 1 || batch > MAX_BATCH || frame_packets < 1 || keyframe_interval <= 0 || max_seconds <= 0)
        usage();

    char host[64];
    const char *colon = strrchr(dest, ':');
    if (!colon || (size_t)(colon - dest) >= sizeof host) usage();
    memcpy(host, dest, (size_t)(colon - dest));
    host[colon - dest] = 0;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1) usage();

    prctl(PR_SET_TIMERSLACK, 1UL); /* wake on time, not 50 us late */

    static uint8_t bufs[MAX_BATCH][MAX_SIZE];
    static struct iovec iov[MAX_BATCH];
    static struct mmsghdr msgs[MAX_BATCH];
    memset(bufs, 0, sizeof bufs);
    for (int i = 0; i < MAX_BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = (size_t)size;
        msgs[i].msg_hdr.msg_name = &to;
        msgs[i].msg_hdr.msg_namelen = sizeof to;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    const double interval_ns = 1e9 * batch / rate;
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(max_seconds * 1e9), first_ns = 0, last_ns = 0;
    long sent = 0, errors = 0, k = 0, requests = 0;
    int force_key = 0;
    uint8_t fb[1500];
    uint32_t frame_ts = 0;
    uint64_t frame_first = 0; /* send time of the current frame's first packet (a run starts a frame) */
    uint64_t last_key = 0;
    int key = 0;
    uint64_t max_behind = 0;
    while (sent < count) {
        uint64_t due = t0 + (uint64_t)(k * interval_ns);
        if (due > deadline) break;
        uint64_t t = now_ns();
        if (t < due) {
            sleep_until(due);
        } else if (t - due > max_behind) {
            max_behind = t - due;
        }
        for (long r; (r = recv(fd, fb, sizeof fb, MSG_DONTWAIT)) > 0;)
            if (keyframe_requested(fb, r)) force_key = 1, requests++;
        int n = (int)(count - sent < batch ? count - sent : batch);
        uint64_t stamp = now_ns();
        for (int i = 0; i < n; i++) {
            uint8_t *p = bufs[i];
            uint64_t g = first + (uint64_t)(sent + i);
            int pos = (int)((sent + i) % frame_packets);
            if (pos == 0) {
                frame_first = stamp;
                frame_ts = (uint32_t)((stamp * 9u) / 100000u);
                key = !last_key || force_key || stamp - last_key >= (uint64_t)(keyframe_interval * 1e9);
                if (key) last_key = stamp, force_key = 0;
            }
            uint16_t seq = (uint16_t)g;
            uint32_t ts = frame_ts, idx = (uint32_t)(sent + i), ns32;
            p[0] = 0x80;
            p[1] = (uint8_t)((pos == frame_packets - 1 ? 0x80 : 0) | (pt & 0x7f));
            p[2] = (uint8_t)(seq >> 8);
            p[3] = (uint8_t)seq;
            ns32 = htonl(ts);
            memcpy(p + 4, &ns32, 4);
            ns32 = htonl(ssrc);
            memcpy(p + 8, &ns32, 4);
            uint8_t *pl = p + 12;
            memset(pl, 0, STAMP_OFF);
            if (pos == 0) {
                pl[0] = 0x10; /* VP8 descriptor: S=1, partition 0 */
                /* VP8 payload header: show_frame=1, P=0 for a keyframe, 1 otherwise */
                pl[1] = (uint8_t)(0x10 | (key ? 0 : 1));
                if (key) {
                    pl[4] = 0x9d, pl[5] = 0x01, pl[6] = 0x2a; /* start code */
                    pl[7] = 0x80, pl[8] = 0x02;               /* width 640 */
                    pl[9] = 0xe0, pl[10] = 0x01;              /* height 480 */
                }
            }
            uint32_t w[3] = {MAGIC, run, idx};
            memcpy(pl + STAMP_OFF, w, sizeof w);
            memcpy(pl + STAMP_OFF + 12, &stamp, 8);
            memcpy(pl + STAMP_OFF + 20, &frame_first, 8);
        }
        int off = 0;
        while (off < n) {
            int r = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
            if (r < 0) {
                if (errno == EINTR) continue;
                errors++;
                off++; /* drop the packet that failed; count it as sent-and-lost */
                continue;
            }
            off += r;
        }
        if (!first_ns) first_ns = stamp;
        last_ns = now_ns();
        sent += n;
        k++;
    }
    double elapsed = first_ns ? (double)(last_ns - first_ns) / 1e9 + batch / rate : 0;
    printf("{\"sent\": %ld, \"errors\": %ld, \"first_ns\": %llu, \"last_ns\": %llu, \"elapsed_s\": %.6f, "
           "\"achieved_pps\": %.1f, \"max_behind_us\": %.1f, \"next\": %llu, \"wait_ns\": %llu, "
           "\"keyframe_requests\": %ld}\n",
           sent, errors, (unsigned long long)first_ns, (unsigned long long)last_ns, elapsed,
           elapsed > 0 ? sent / elapsed : 0.0, max_behind / 1e3, (unsigned long long)(first + (uint64_t)sent), wait_ns(), requests);
    return 0;
}
