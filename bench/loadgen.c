/*
 * loadgen: the benchmark's load generator (part of `python -m bench`, compiled at run time).
 *
 * One process, one epoll loop, non-blocking sockets, all on 127.0.0.1. It opens client
 * connections to a chat server, logs them in, and then, depending on --mode:
 *
 *   fanout   S of the clients send lines with at most W of their own lines in flight each (a line
 *            is in flight until its sender receives it back); every client parses every line it
 *            receives, finds the payloads, counts them, checks each sender's order, and records
 *            the latency from the send time carried in the payload to the receipt.
 *   idle     the clients log in and stay, reading whatever arrives, until told to quit.
 *   connect  --clients connections, at most --parallel at once, each closed as soon as it is
 *            registered; reports registered connections per second.
 *   storm    the login storm: --clients connections, at most --parallel at once being set up, each
 *            registering a nickname and entering the room (--room lobby), and staying; reports
 *            connect-to-in-the-room times and the rate; ends once the last one is in.
 *
 * Rooms: by default every client is in one room (the line door: lobby; irc: #bench; ws: bench;
 * --room picks another). With --rooms R, client k is in room "r<k mod R>" (R rooms of about
 * clients/R; the line door moves there from the lobby with /join, irc JOINs #r<n>, ws joins r<n>),
 * every sender talks in its own room, and a payload from another room counts as misrouted. The
 * threaded baseline has one room and no /join: --rooms and --room are refused for it.
 *
 * Sending: closed loop by default (at most --window lines in flight per sender). With --rate X
 * (open loop), each sender sends X lines per second on a fixed schedule (senders spread over one
 * interval), whether or not its earlier lines came back, and each payload carries its scheduled
 * send time, so a late send shows as latency (no coordinated omission); a timerfd wakes the loop.
 *
 * Protocols (--proto): line (chat_twisted: send "NICK\r\n", registered on "* NICK joined lobby"),
 * threaded (bench/baselines/threaded.py: "NICK\r\n", registered on "* NICK joined"), irc
 * (NICK and USER; registered on 001, then "CAP REQ :echo-message" and JOIN #bench, ready on the
 * server's echo of our JOIN; lines go out as "PRIVMSG #bench :PAYLOAD"; PINGs answered), ws
 * (chat_twisted's WebSocket door: "GET /ws" with Upgrade, 101 expected, then RFC 6455 frames,
 * masked from us, unmasked from the server, several per read or split across reads; one JSON
 * object per text frame: {"type":"login","nick":NICK} and {"type":"join","room":"bench"}, ready
 * on the {"type":"joined","room":"bench","nick":NICK} event (connect mode: login only, registered
 * on "welcome"); lines go out as {"type":"say","room":"bench","text":"PAYLOAD"} and come back in
 * "message" events whose "text" is the payload; pings answered with pongs).
 *
 * Payload: PAYLOAD_LEN (62) printable bytes, "~B SSSSS QQQQQQQQQQ TTTTTTTTTTTTTTTTTTTT x...x":
 * sender id, sequence number (from 1), send time in ns (CLOCK_MONOTONIC); with CRLF, 64 bytes
 * on the line protocols. The payload is always the end of the line the server delivers (ws: the
 * whole "text" value of a message event; the payload has nothing JSON escapes).
 *
 * Control (stdin/stdout, one line each; JSON out):
 *   out {"event":"ready",...}   all clients are logged in (fanout, idle; not connect or storm)
 *   in  "go T0"                 fanout: start sending at CLOCK_MONOTONIC time T0 (ns)
 *   in  "quit" or end of input  idle: close everything and report
 *   out {"event":"result",...}  the final report; {"event":"error",...} on failure (exit 2)
 *
 * Several servers (--port P1,P2,...: the processes of one cluster): client k connects to port
 * number (k / step + k % step) mod P, step being clients / senders (sender s is client s * step),
 * so that the senders alternate between the ports (sender s on port s mod P) and so do the
 * clients between two senders: each port gets an even share of both. Every delivery is then
 * counted twice over: same-process (the receiver is on its sender's port) or cross-process (on
 * another one: the line crossed the bus), each with its own latency histogram; with one port
 * every delivery is same-process.
 *
 * Several processes can share one run (--first/--count pick this process's clients out of
 * --clients); the Python side adds up their reports. Every wait is bounded (--login-timeout,
 * --drain, --deadline). Its own CPU time (getrusage) is reported, so the bench can show that the
 * load generator is not the bottleneck.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_LEN 62
#define MARK "~B "
#define SCRATCH_SIZE (2 * 1024 * 1024)
#define MAX_CARRY (1024 * 1024) /* longest unfinished line or WebSocket frame kept between reads */
#define MAX_EVENTS 1024
#define STDIN_TAG UINT32_MAX
#define TIMER_TAG (UINT32_MAX - 1)
#define SUB_BITS 6 /* histogram: 64 sub-buckets per power of two, about 1.6 % precision */
#define SUB (1 << SUB_BITS)
#define NBUCKETS (64 * SUB)
#define NS 1000000000LL

enum proto { P_LINE, P_THREADED, P_IRC, P_WS };
enum mode { M_FANOUT, M_IDLE, M_CONNECT, M_STORM };
enum state { S_UNUSED, S_CONNECTING, S_UPGRADE, S_LOGIN, S_JOINING, S_READY, S_CLOSED };

struct client {
    int fd;
    int gid;            /* global client number, 0 .. clients-1 */
    int sender;         /* sender id, or -1 */
    int state;
    int room;           /* --rooms: its room number; -1: the one room (--room) */
    int port;           /* which of --port's ports it connects to (an index) */
    int64_t t_connect;  /* when connect() was called, ns */
    int64_t due0;       /* open loop: when its first line is due, ns */
    char *part;         /* the unfinished line (ws: frame) carried over from the last read */
    uint32_t plen, pcap;
    char *out;          /* bytes the socket did not take yet */
    uint32_t olen, ocap;
    bool want_out;      /* registered for EPOLLOUT */
    uint32_t seq;       /* sender: last sequence number sent */
    int inflight;       /* sender: own lines sent and not yet received back */
    uint32_t *last;     /* [senders]: last sequence number received from each sender */
    char nick[24];
    uint8_t nick_len;
};

/* --- options ------------------------------------------------------------------------------ */
#define MAX_PORTS 16
static int opt_ports[MAX_PORTS], n_ports = 0;  /* --port P1,P2,...: the servers, clients spread over them */
static int opt_proto = P_LINE, opt_mode = M_FANOUT;
static int opt_clients = 10, opt_first = 0, opt_count = -1, opt_senders = 0, opt_window = 8;
static int opt_parallel = 100;
static double opt_warmup = 1.0, opt_duration = 5.0, opt_drain = 10.0, opt_quiet = 1.0;
static double opt_login_timeout = 120.0, opt_deadline = 3600.0;
static const char *opt_prefix = "u";
static const char *opt_room = NULL;  /* the one room when --rooms is 0 (default: lobby on line, else bench) */
static int opt_rooms = 0;
static double opt_rate = 0;  /* open loop: lines per second per sender; 0: closed loop (--window) */

/* --- state -------------------------------------------------------------------------------- */
static struct client *clients;
static int epfd;
static char scratch[SCRATCH_SIZE];
static uint64_t hist[NBUCKETS];
static uint64_t connect_hist[NBUCKETS];
static uint64_t hist_same[NBUCKETS], hist_cross[NBUCKETS];  /* the receiver on its sender's port, or not */
static int64_t lat_min = INT64_MAX, lat_max = 0, connect_max = 0, lat_max_same = 0, lat_max_cross = 0;
static uint64_t window_same = 0, window_cross = 0;  /* window deliveries of each kind */
static int *sender_port = NULL;  /* [senders]: the port index of each sender */

static int launched = 0, in_progress = 0, ready = 0, failed = 0, disconnected = 0;
static uint64_t sent_total = 0, received_total = 0, window_delivered = 0, window_sent = 0;
static uint64_t reordered = 0, duplicates = 0, gaps = 0, error_lines = 0, other_lines = 0;
static uint64_t bytes_in = 0, bytes_out = 0, malformed = 0, pings = 0;
static uint64_t expected_total = 0, misrouted = 0;  /* deliveries owed: each line sent x its room's size */
static int timer_fd = -1;
static int *local_senders_at = NULL, n_local_senders = 0;  /* indices of this process's senders */
static uint32_t mask_state = 0x9e3779b9u;  /* ws: xorshift32 for the client frames' mask keys */
static char first_error[160] = "";
static bool sending = false, started = false, window_open = false, window_closed = false;
static int64_t t_go = 0, t_warm_end = 0, t_end = 0, t_last_payload = 0, t_drain_start = 0;
static int64_t longest_silence = 0;  /* fanout: the longest time between two payloads received (a stall) */
static int64_t t_first_connect = 0, t_last_ready = 0;
static double cpu_window_start = 0, cpu_window = 0;
static int step = 1;  /* sender k is client k*step */
static const char *drain_end = "";  /* fanout: why the drain ended: complete, quiet (--quiet s without a
                                     * payload) or limit (--drain s) */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void fail(const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    printf("{\"event\":\"error\",\"error\":\"%s\",\"ready\":%d,\"failed\":%d,\"first_error\":\"%s\"}\n",
           text, ready, failed, first_error);
    fflush(stdout);
    exit(2);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) fail("out of memory");
    return q;
}

/* --- rooms ------------------------------------------------------------------------------- */
static int room_of(int gid) { return opt_rooms ? gid % opt_rooms : -1; }

/* How many clients are in room `room` (all of them for the one room). */
static int room_size(int room) {
    return room < 0 ? opt_clients : opt_clients / opt_rooms + (room < opt_clients % opt_rooms ? 1 : 0);
}

/* The room's name as the servers spell it without '#' ("lobby", "bench", "r12"); its length. */
static int room_name(int room, char *out, size_t cap) {
    return room < 0 ? snprintf(out, cap, "%s", opt_room) : snprintf(out, cap, "r%d", room);
}

/* --- ports ------------------------------------------------------------------------------- */
/* The port index of client `gid`: senders alternate between the ports, and so do the clients
 * between two senders (see the top of the file). */
static int port_of(int gid) { return n_ports < 2 ? 0 : (gid / step + gid % step) % n_ports; }

/* Parse "P1,P2,..." into opt_ports; false if malformed. */
static bool parse_ports(const char *text) {
    n_ports = 0;
    while (*text) {
        char *end;
        long port = strtol(text, &end, 10);
        if (end == text || port <= 0 || port > 65535 || n_ports == MAX_PORTS) return false;
        opt_ports[n_ports++] = (int)port;
        if (*end == ',') end++;
        else if (*end) return false;
        text = end;
    }
    return n_ports > 0;
}

/* --- histogram ---------------------------------------------------------------------------- */
static int bucket_of(uint64_t v) {
    if (v < SUB) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - SUB_BITS;
    return (shift + 1) * SUB + (int)((v >> shift) & (SUB - 1));
}

static void print_hist(const char *name, const uint64_t *h) {
    printf("\"%s\":[", name);
    bool first = true;
    for (int i = 0; i < NBUCKETS; i++) {
        if (!h[i]) continue;
        printf("%s[%d,%llu]", first ? "" : ",", i, (unsigned long long)h[i]);
        first = false;
    }
    printf("]");
}

/* --- output buffering --------------------------------------------------------------------- */
static void set_events(struct client *c, bool want_out) {
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)(c - clients)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static void close_client(struct client *c, bool counted_as_disconnect);

/* Send what is queued, then `data`; queue whatever the socket does not take. */
static void send_bytes(struct client *c, const char *data, size_t len) {
    if (c->state == S_CLOSED || c->state == S_UNUSED) return;
    if (c->olen) {  /* keep order: append behind what is waiting */
        if (c->olen + len > c->ocap) {
            c->ocap = (uint32_t)((c->olen + len) * 2);
            c->out = xrealloc(c->out, c->ocap);
        }
        memcpy(c->out + c->olen, data, len);
        c->olen += (uint32_t)len;
        return;
    }
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            bytes_out += (uint64_t)n;
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            close_client(c, true);
            return;
        }
    }
    if (len) {
        if (len > c->ocap) {
            c->ocap = (uint32_t)len * 2;
            c->out = xrealloc(c->out, c->ocap);
        }
        memcpy(c->out, data, len);
        c->olen = (uint32_t)len;
        set_events(c, true);
    }
}

static void flush_out(struct client *c) {
    uint32_t off = 0;
    while (off < c->olen) {
        ssize_t n = send(c->fd, c->out + off, c->olen - off, MSG_NOSIGNAL);
        if (n > 0) {
            bytes_out += (uint64_t)n;
            off += (uint32_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            close_client(c, true);
            return;
        }
    }
    memmove(c->out, c->out + off, c->olen - off);
    c->olen -= off;
    if (!c->olen) set_events(c, false);
}

/* --- connections -------------------------------------------------------------------------- */
static void close_client(struct client *c, bool counted_as_disconnect) {
    if (c->state == S_CLOSED || c->state == S_UNUSED) return;
    if (counted_as_disconnect) {
        disconnected++;
        if (c->state != S_READY) failed++;
    }
    if (c->state != S_READY && c->state != S_CLOSED) in_progress--;
    /* An abortive close (RST): no TIME_WAIT left behind on the client side, so that repeated runs
     * do not run out of ephemeral ports. */
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c->fd);
    c->fd = -1;
    c->state = S_CLOSED;
}

/* --- WebSocket framing (ws) ---------------------------------------------------------------- */
/* One client frame (FIN set, masked as RFC 6455 requires of clients) of `len` bytes of `data` into
 * `out`, which has room for len + 14; returns the frame's length. */
static size_t ws_frame(char *out, int opcode, const char *data, size_t len) {
    size_t h = 0;
    out[h++] = (char)(0x80 | opcode);
    if (len < 126) {
        out[h++] = (char)(0x80 | len);
    } else if (len < 65536) {
        out[h++] = (char)(0x80 | 126);
        out[h++] = (char)(len >> 8);
        out[h++] = (char)len;
    } else {
        out[h++] = (char)(0x80 | 127);
        for (int i = 7; i >= 0; i--) out[h++] = (char)((uint64_t)len >> (8 * i));
    }
    mask_state ^= mask_state << 13;
    mask_state ^= mask_state >> 17;
    mask_state ^= mask_state << 5;
    unsigned char key[4];
    memcpy(key, &mask_state, 4);
    memcpy(out + h, key, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) out[h + i] = (char)(data[i] ^ key[i & 3]);
    return h + len;
}

/* Send one JSON text (or a control frame) to the server as one masked frame. */
static void ws_send(struct client *c, int opcode, const char *data, size_t len) {
    char buf[1024];
    if (len + 14 > sizeof buf) len = sizeof buf - 14;
    send_bytes(c, buf, ws_frame(buf, opcode, data, len));
}

static void send_login(struct client *c) {
    char buf[512];
    int n;
    c->state = S_LOGIN;
    if (opt_proto == P_IRC) {
        n = snprintf(buf, sizeof buf, "NICK %s\r\nUSER %s 0 * :%s\r\n", c->nick, c->nick, c->nick);
    } else if (opt_proto == P_WS) {  /* no Origin: not a browser, let in */
        n = snprintf(buf, sizeof buf,
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     opt_ports[c->port]);
        c->state = S_UPGRADE;
    } else {
        n = snprintf(buf, sizeof buf, "%s\r\n", c->nick);
    }
    send_bytes(c, buf, (size_t)n);
}

static void launch(int local) {
    struct client *c = &clients[local];
    c->gid = opt_first + local;
    c->nick_len = (uint8_t)snprintf(c->nick, sizeof c->nick, "%s%d", opt_prefix, c->gid);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) fail("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_ports[c->port])};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->t_connect = now_ns();
    if (!t_first_connect) t_first_connect = c->t_connect;
    launched++;
    in_progress++;
    int r = connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)local};
    if (r < 0 && errno == EINPROGRESS) {
        c->state = S_CONNECTING;
        ev.events |= EPOLLOUT;
        c->want_out = true;
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    } else if (r == 0) {
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
        send_login(c);
    } else {
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "connect: %s", strerror(errno));
        c->state = S_LOGIN;
        close_client(c, true);
    }
}

static void registered(struct client *c, int64_t now) {
    int64_t took = now - c->t_connect;
    in_progress--;
    ready++;
    t_last_ready = now;
    if (opt_mode == M_CONNECT || opt_mode == M_STORM) {
        connect_hist[bucket_of((uint64_t)took)]++;
        if (took > connect_max) connect_max = took;
    }
    c->state = S_READY;
    if (opt_mode == M_CONNECT) close_client(c, false);
}

/* --- sending ------------------------------------------------------------------------------ */
/* Append one line of sender `c` with send time `stamp` (its payload) to `out`; return its length
 * (at most EMIT_MAX bytes). */
#define EMIT_MAX 200
static size_t emit(struct client *c, char *out, int64_t stamp) {
    char room[32];
    int rlen = room_name(c->room, room, sizeof room);
    size_t len = 0;
    c->seq++;
    c->inflight++;
    sent_total++;
    expected_total += (uint64_t)room_size(c->room);
    if (window_open && !window_closed) window_sent++;
    char json[96 + PAYLOAD_LEN];
    char *p;
    int head = 0;
    if (opt_proto == P_WS) {
        head = snprintf(json, sizeof json, "{\"type\":\"say\",\"room\":\"%s\",\"text\":\"", room);
        p = json + head;
    } else {
        if (opt_proto == P_IRC) len += (size_t)sprintf(out, "PRIVMSG #%.*s :", rlen, room);
        p = out + len;
    }
    int n = snprintf(p, PAYLOAD_LEN + 1, "%s%05d %010u %020lld ", MARK, c->sender, c->seq, (long long)stamp);
    memset(p + n, 'x', (size_t)(PAYLOAD_LEN - n));
    if (opt_proto == P_WS) {  /* 101 bytes of JSON in the bench room: a 107-byte frame */
        memcpy(p + PAYLOAD_LEN, "\"}", 2);
        len += ws_frame(out, 1, json, (size_t)head + PAYLOAD_LEN + 2);
    } else {
        len += PAYLOAD_LEN;
        out[len++] = '\r';
        out[len++] = '\n';
    }
    return len;
}

/* Closed loop: send until the sender has --window lines in flight. */
static void top_up(struct client *c) {
    if (!sending || opt_rate > 0 || c->sender < 0 || c->state != S_READY || c->inflight >= opt_window) return;
    int64_t now = now_ns();
    char buf[64 * EMIT_MAX];
    size_t len = 0;
    while (c->inflight < opt_window && len + EMIT_MAX <= sizeof buf) len += emit(c, buf + len, now);
    send_bytes(c, buf, len);
}

/* When sender `c`'s next line is due (open loop): its first due time plus seq intervals. */
static int64_t next_due(const struct client *c) {
    return c->due0 + (int64_t)((double)c->seq * (double)NS / opt_rate);
}

/* Open loop: send every line that is due by `now`, stamped with its due time; return the
 * earliest next due time of this process's senders (0 if none is left). */
static int64_t pace(int64_t now) {
    int64_t earliest = 0;
    char buf[64 * EMIT_MAX];
    for (int k = 0; k < n_local_senders; k++) {
        struct client *c = &clients[local_senders_at[k]];
        size_t len = 0;
        int64_t due;
        while (c->state == S_READY && (due = next_due(c)) <= now) {
            len += emit(c, buf + len, due);
            if (len + EMIT_MAX > sizeof buf) {
                send_bytes(c, buf, len);
                len = 0;
            }
        }
        if (len) send_bytes(c, buf, len);
        if (c->state == S_READY && (!earliest || next_due(c) < earliest)) earliest = next_due(c);
    }
    return earliest;
}

/* --- receiving ---------------------------------------------------------------------------- */
static uint64_t digits(const char *p, int n, bool *ok) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9) *ok = false;
        v = v * 10 + d;
    }
    return v;
}

static void payload(struct client *c, const char *p, int64_t now) {
    bool ok = p[8] == ' ' && p[19] == ' ' && p[40] == ' ';
    uint64_t sender = digits(p + 3, 5, &ok), seq = digits(p + 9, 10, &ok), sent = digits(p + 20, 20, &ok);
    if (!ok || sender >= (uint64_t)opt_senders || seq == 0) {
        malformed++;
        return;
    }
    if (opt_rooms && room_of((int)sender * step) != c->room) {  /* a line from another room */
        misrouted++;
        return;
    }
    received_total++;
    if (t_last_payload && now - t_last_payload > longest_silence) longest_silence = now - t_last_payload;
    t_last_payload = now;
    int64_t latency = now - (int64_t)sent;
    if (latency < 0) latency = 0;
    if (window_open && !window_closed) {
        window_delivered++;
        int b = bucket_of((uint64_t)latency);
        hist[b]++;
        if (latency > lat_max) lat_max = latency;
        if (latency < lat_min) lat_min = latency;
        if (sender_port[sender] == c->port) {
            window_same++;
            hist_same[b]++;
            if (latency > lat_max_same) lat_max_same = latency;
        } else {
            window_cross++;
            hist_cross[b]++;
            if (latency > lat_max_cross) lat_max_cross = latency;
        }
    }
    uint32_t last = c->last[sender];
    if (seq == last) duplicates++;
    else if (seq < last) reordered++;
    else {
        if (seq > (uint64_t)last + 1) gaps += seq - last - 1;
        c->last[sender] = (uint32_t)seq;
    }
    if ((int)sender == c->sender && c->inflight > 0) c->inflight--;
}

static bool starts(const char *line, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && memcmp(line, prefix, n) == 0;
}

static void note_error(const char *line, size_t len) {
    error_lines++;
    if (!first_error[0]) {
        size_t n = len < sizeof first_error - 1 ? len : sizeof first_error - 1;
        for (size_t i = 0; i < n; i++)  /* keep it valid inside a JSON string */
            first_error[i] = (line[i] == '"' || line[i] == '\\' || (unsigned char)line[i] < 32) ? '?' : line[i];
        first_error[n] = 0;
    }
}

/* The IRC numeric of a line ":server NNN ...", or -1. */
static int irc_numeric(const char *line, size_t len) {
    if (!len || line[0] != ':') return -1;
    const char *sp = memchr(line, ' ', len);
    if (!sp || (size_t)(sp - line) + 4 > len) return -1;
    if (sp[1] < '0' || sp[1] > '9' || sp[2] < '0' || sp[2] > '9' || sp[3] < '0' || sp[3] > '9') return -1;
    if ((size_t)(sp - line) + 4 < len && sp[4] != ' ') return -1;
    return (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
}

static void handle_line(struct client *c, const char *line, size_t len, int64_t now) {
    if (len && line[len - 1] == '\r') len--;
    if (len >= PAYLOAD_LEN && memcmp(line + len - PAYLOAD_LEN, MARK, 3) == 0) {
        payload(c, line + len - PAYLOAD_LEN, now);
        return;
    }
    if (opt_proto == P_IRC) {
        if (starts(line, len, "PING ")) {
            char buf[600];
            size_t n = len < 500 ? len : 500;
            memcpy(buf, "PONG", 4);
            memcpy(buf + 4, line + 4, n - 4);
            buf[n] = '\r';
            buf[n + 1] = '\n';
            pings++;
            send_bytes(c, buf, n + 2);
            return;
        }
        if (starts(line, len, "ERROR")) {
            note_error(line, len);
            return;
        }
        int numeric = irc_numeric(line, len);
        if (c->state == S_LOGIN && numeric == 1) {
            if (opt_mode == M_CONNECT) {
                registered(c, now);
            } else {
                /* echo-message after registration: asked for before, InspIRCd holds the
                 * registration until its once-a-second timer. */
                char room[32], join[96];
                room_name(c->room, room, sizeof room);
                int n = snprintf(join, sizeof join, "CAP REQ :echo-message\r\nJOIN #%s\r\n", room);
                c->state = S_JOINING;
                send_bytes(c, join, (size_t)n);
            }
            return;
        }
        /* 422 ERR_NOMOTD is part of a normal registration (a server without a MOTD), not an error. */
        if (numeric >= 400 && numeric < 600 && numeric != 422) {
            note_error(line, len);
            return;
        }
        if (c->state == S_JOINING && len > (size_t)c->nick_len + 2 && line[0] == ':' &&
            memcmp(line + 1, c->nick, c->nick_len) == 0 && line[1 + c->nick_len] == '!' &&
            memmem(line, len, " JOIN ", 6)) {
            registered(c, now);
            return;
        }
        other_lines++;
        return;
    }
    if (starts(line, len, "error:")) {
        note_error(line, len);
        return;
    }
    if (c->state == S_LOGIN || c->state == S_JOINING) {
        /* "* NICK joined lobby" (line protocol: logged in), then "* NICK joined ROOM" after a /join;
         * "* NICK joined" (threaded baseline) */
        char tail[48], room[32];
        room_name(c->room, room, sizeof room);
        if (opt_proto == P_THREADED) snprintf(tail, sizeof tail, " joined");
        else snprintf(tail, sizeof tail, " joined %s", c->state == S_LOGIN ? "lobby" : room);
        size_t tlen = strlen(tail);
        if (len == 2 + c->nick_len + tlen && line[0] == '*' && line[1] == ' ' &&
            memcmp(line + 2, c->nick, c->nick_len) == 0 && memcmp(line + 2 + c->nick_len, tail, tlen) == 0) {
            if (c->state == S_LOGIN && opt_proto == P_LINE && opt_mode != M_CONNECT && strcmp(room, "lobby") != 0) {
                char join[48];
                int n = snprintf(join, sizeof join, "/join %s\r\n", room);
                c->state = S_JOINING;
                send_bytes(c, join, (size_t)n);
            } else {
                registered(c, now);
            }
            return;
        }
    }
    other_lines++;
}

/* One JSON event of the WebSocket door (the text of one frame). */
static void ws_message(struct client *c, const char *msg, size_t len, int64_t now) {
    static const char text_key[] = "\"text\":\"" MARK;
    if (starts(msg, len, "{\"type\":\"message\"")) {
        const char *t = memmem(msg, len, text_key, sizeof text_key - 1);
        if (t) {
            t += sizeof text_key - 1 - 3;  /* the payload, MARK included */
            if ((size_t)(t - msg) + PAYLOAD_LEN < len && t[PAYLOAD_LEN] == '"') {
                payload(c, t, now);
                return;
            }
            malformed++;
            return;
        }
        other_lines++;  /* somebody else's message (none in the bench) */
        return;
    }
    if (starts(msg, len, "{\"type\":\"error\"") || starts(msg, len, "{\"type\":\"goodbye\"")) {
        note_error(msg, len);
        return;
    }
    if (c->state == S_LOGIN && opt_mode == M_CONNECT && starts(msg, len, "{\"type\":\"welcome\"")) {
        registered(c, now);
        return;
    }
    char room[32], want_room[48];
    room_name(c->room, room, sizeof room);
    int rn = snprintf(want_room, sizeof want_room, "\"room\":\"%s\"", room);
    if (c->state == S_JOINING && starts(msg, len, "{\"type\":\"joined\"") && memmem(msg, len, want_room, (size_t)rn)) {
        char want[48];
        int n = snprintf(want, sizeof want, "\"nick\":\"%s\"", c->nick);
        if (memmem(msg, len, want, (size_t)n)) {
            registered(c, now);
            return;
        }
    }
    other_lines++;
}

/* The HTTP answer to the upgrade (all its headers are in buf[0..len)): 101, or an error. */
static void ws_upgraded(struct client *c, const char *buf, size_t len) {
    if (!starts(buf, len, "HTTP/1.1 101 ")) {
        const char *eol = memchr(buf, '\r', len);
        note_error(buf, eol ? (size_t)(eol - buf) : len);
        close_client(c, true);
        return;
    }
    char text[128];
    int n = snprintf(text, sizeof text, "{\"type\":\"login\",\"nick\":\"%s\"}", c->nick);
    ws_send(c, 1, text, (size_t)n);
    c->state = S_LOGIN;
    if (opt_mode != M_CONNECT) {
        char room[32], join[80];
        room_name(c->room, room, sizeof room);
        n = snprintf(join, sizeof join, "{\"type\":\"join\",\"room\":\"%s\"}", room);
        ws_send(c, 1, join, (size_t)n);
        c->state = S_JOINING;
    }
}

/* Consume the whole HTTP answer and WebSocket frames in buf[0..total); return the bytes used (the
 * rest, an unfinished frame or answer, waits for the next read). */
static size_t ws_consume(struct client *c, char *buf, size_t total, int64_t now) {
    size_t start = 0;
    if (c->state == S_UPGRADE) {
        char *end = memmem(buf, total, "\r\n\r\n", 4);
        if (!end) return 0;
        start = (size_t)(end - buf) + 4;
        ws_upgraded(c, buf, start);
        if (c->state == S_CLOSED) return total;
    }
    while (total - start >= 2) {
        const unsigned char *h = (const unsigned char *)buf + start;
        size_t avail = total - start, hlen = 2;
        uint64_t plen = h[1] & 0x7f;
        bool masked = h[1] & 0x80;  /* a server must not mask; accepted anyway */
        if (plen == 126) {
            if (avail < 4) break;
            plen = (uint64_t)h[2] << 8 | h[3];
            hlen = 4;
        } else if (plen == 127) {
            if (avail < 10) break;
            plen = 0;
            for (int i = 0; i < 8; i++) plen = plen << 8 | h[2 + i];
            hlen = 10;
        }
        if (masked) hlen += 4;
        if (plen > MAX_CARRY) fail("a WebSocket frame of %llu bytes from the server", (unsigned long long)plen);
        if (avail < hlen + plen) break;
        char *data = buf + start + hlen;
        if (masked)
            for (uint64_t i = 0; i < plen; i++) data[i] ^= (char)h[hlen - 4 + (i & 3)];
        int opcode = h[0] & 0x0f;
        start += hlen + (size_t)plen;
        if (opcode == 1 || opcode == 0) {  /* text (the server does not fragment; continuation read as text) */
            ws_message(c, data, (size_t)plen, now);
        } else if (opcode == 9) {  /* ping: pong with the same payload */
            pings++;
            ws_send(c, 10, data, (size_t)plen);
        } else if (opcode == 8) {  /* close: the server is done with us */
            if (!first_error[0])
                snprintf(first_error, sizeof first_error, "server closed the WebSocket of client %d", c->gid);
            close_client(c, true);
        } else if (opcode != 10) {  /* a binary frame, or an unknown opcode */
            malformed++;
        }
        if (c->state == S_CLOSED) return total;
    }
    return start;
}

/* Consume the complete lines in buf[0..total); return the bytes used. */
static size_t lines_consume(struct client *c, char *buf, size_t total, int64_t now) {
    size_t start = 0;
    for (;;) {
        char *nl = memchr(buf + start, '\n', total - start);
        if (!nl) break;
        size_t end = (size_t)(nl - buf);
        handle_line(c, buf + start, end - start, now);
        if (c->state == S_CLOSED) return total;
        start = end + 1;
    }
    return start;
}

static void handle_readable(struct client *c) {
    uint32_t carried = c->plen;
    if (carried) memcpy(scratch, c->part, carried);
    ssize_t n = recv(c->fd, scratch + carried, SCRATCH_SIZE - carried, 0);
    int64_t now = now_ns();  /* the receipt time of every line in this read */
    if (n == 0) {
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "server closed client %d", c->gid);
        close_client(c, true);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "recv: %s", strerror(errno));
        close_client(c, true);
        return;
    }
    bytes_in += (uint64_t)n;
    size_t total = carried + (size_t)n;
    size_t start = opt_proto == P_WS ? ws_consume(c, scratch, total, now) : lines_consume(c, scratch, total, now);
    if (c->state == S_CLOSED) return;
    size_t rest = total - start;
    if (rest > MAX_CARRY) fail("a line or frame longer than %d KiB from the server", MAX_CARRY / 1024);
    if (rest > c->pcap) {
        c->pcap = (uint32_t)rest * 2;
        c->part = xrealloc(c->part, c->pcap);
    }
    memcpy(c->part, scratch + start, rest);
    c->plen = (uint32_t)rest;
    top_up(c);
}

static void handle_writable(struct client *c) {
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            if (!first_error[0]) snprintf(first_error, sizeof first_error, "connect: %s", strerror(err));
            c->state = S_LOGIN;
            close_client(c, true);
            return;
        }
        set_events(c, false);
        send_login(c);
        return;
    }
    flush_out(c);
}

/* --- control ------------------------------------------------------------------------------ */
static char stdin_buf[256];
static size_t stdin_len = 0;
static bool quit_requested = false;

static void handle_stdin(void) {
    ssize_t n = read(0, stdin_buf + stdin_len, sizeof stdin_buf - 1 - stdin_len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        quit_requested = true;  /* end of input */
        epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
        return;
    }
    stdin_len += (size_t)n;
    stdin_buf[stdin_len] = 0;
    char *nl;
    while ((nl = strchr(stdin_buf, '\n'))) {
        *nl = 0;
        long long t0;
        if (sscanf(stdin_buf, "go %lld", &t0) == 1 && !t_go) {
            t_go = t0;
            t_warm_end = t_go + (int64_t)(opt_warmup * NS);
            t_end = t_warm_end + (int64_t)(opt_duration * NS);
        } else if (strncmp(stdin_buf, "quit", 4) == 0) {
            quit_requested = true;
        }
        size_t used = (size_t)(nl + 1 - stdin_buf);
        memmove(stdin_buf, nl + 1, stdin_len - used + 1);
        stdin_len -= used;
    }
    if (stdin_len >= sizeof stdin_buf - 1) stdin_len = 0;
}

static double secs(int64_t ns) { return ns / 1e9; }

static void report(int64_t now) {
    int count = opt_count;
    int local_senders = 0;
    for (int i = 0; i < count; i++)
        if (clients[i].sender >= 0) local_senders++;
    const char *mode = opt_mode == M_FANOUT ? "fanout" : opt_mode == M_IDLE ? "idle"
                     : opt_mode == M_STORM ? "storm" : "connect";
    char cpus[256] = "";  /* the CPUs this process may run on (taskset), e.g. "1" */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        size_t used = 0;
        for (int cpu = 0; cpu < CPU_SETSIZE && used + 8 < sizeof cpus; cpu++)
            if (CPU_ISSET(cpu, &set)) used += (size_t)snprintf(cpus + used, sizeof cpus - used, "%s%d", used ? "," : "", cpu);
    }
    printf("{\"event\":\"result\",\"mode\":\"%s\",\"clients\":%d,\"first\":%d,\"count\":%d,\"senders\":%d,"
           "\"local_senders\":%d,\"window\":%d,\"ready\":%d,\"failed\":%d,\"disconnected\":%d,"
           "\"rooms\":%d,\"rate\":%.3f,\"cpus\":\"%s\",\"expected\":%llu,\"misrouted\":%llu,",
           mode, opt_clients, opt_first, count, opt_senders, local_senders, opt_window, ready, failed,
           disconnected, opt_rooms, opt_rate, cpus, (unsigned long long)expected_total,
           (unsigned long long)misrouted);
    printf("\"sent\":%llu,\"window_sent\":%llu,\"received\":%llu,\"window_delivered\":%llu,"
           "\"reordered\":%llu,\"duplicates\":%llu,\"gaps\":%llu,\"malformed\":%llu,\"error_lines\":%llu,"
           "\"other_lines\":%llu,\"pings\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,",
           (unsigned long long)sent_total, (unsigned long long)window_sent, (unsigned long long)received_total,
           (unsigned long long)window_delivered, (unsigned long long)reordered, (unsigned long long)duplicates,
           (unsigned long long)gaps, (unsigned long long)malformed, (unsigned long long)error_lines,
           (unsigned long long)other_lines, (unsigned long long)pings, (unsigned long long)bytes_in,
           (unsigned long long)bytes_out);
    printf("\"window_s\":%.6f,\"cpu_window_s\":%.6f,\"cpu_total_s\":%.6f,\"drain_s\":%.6f,",
           opt_duration, cpu_window, cpu_seconds(), t_drain_start ? secs(now - t_drain_start) : 0.0);
    printf("\"longest_silence_ns\":%lld,", (long long)longest_silence);
    printf("\"latency_min_ns\":%lld,\"latency_max_ns\":%lld,\"connect_max_ns\":%lld,",
           (long long)(lat_min == INT64_MAX ? 0 : lat_min), (long long)lat_max, (long long)connect_max);
    printf("\"first_connect_ns\":%lld,\"last_ready_ns\":%lld,\"hist_sub_bits\":%d,",
           (long long)t_first_connect, (long long)t_last_ready, SUB_BITS);
    int per_port[MAX_PORTS] = {0};
    for (int i = 0; i < count; i++) per_port[clients[i].port]++;
    printf("\"ports\":[");
    for (int k = 0; k < n_ports; k++) printf("%s%d", k ? "," : "", opt_ports[k]);
    printf("],\"clients_per_port\":[");
    for (int k = 0; k < n_ports; k++) printf("%s%d", k ? "," : "", per_port[k]);
    printf("],\"window_delivered_same\":%llu,\"window_delivered_cross\":%llu,"
           "\"latency_max_same_ns\":%lld,\"latency_max_cross_ns\":%lld,",
           (unsigned long long)window_same, (unsigned long long)window_cross, (long long)lat_max_same,
           (long long)lat_max_cross);
    print_hist("latency_hist_same", hist_same);
    printf(",");
    print_hist("latency_hist_cross", hist_cross);
    printf(",");
    print_hist("latency_hist", hist);
    printf(",");
    print_hist("connect_hist", connect_hist);
    printf(",\"drain_end\":\"%s\",\"first_error\":\"%s\"}\n", drain_end, first_error);
    fflush(stdout);
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --port P[,P2,...] [--proto line|threaded|irc|ws] [--mode fanout|idle|connect|storm]\n"
            "  [--clients C] [--first F --count N] [--senders S] [--window W] [--parallel K]\n"
            "  [--warmup s] [--duration s] [--drain s] [--quiet s] [--login-timeout s] [--deadline s]\n"
            "  [--prefix NICKPREFIX] [--room NAME | --rooms R] [--rate LINES_PER_S_PER_SENDER]\n");
    exit(64);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        i++;
        if (!strcmp(a, "--port")) {
            if (!parse_ports(v)) usage();
        }
        else if (!strcmp(a, "--proto"))
            opt_proto = !strcmp(v, "irc") ? P_IRC : !strcmp(v, "threaded") ? P_THREADED
                      : !strcmp(v, "ws") ? P_WS : P_LINE;
        else if (!strcmp(a, "--mode"))
            opt_mode = !strcmp(v, "idle") ? M_IDLE : !strcmp(v, "connect") ? M_CONNECT
                     : !strcmp(v, "storm") ? M_STORM : M_FANOUT;
        else if (!strcmp(a, "--clients")) opt_clients = atoi(v);
        else if (!strcmp(a, "--first")) opt_first = atoi(v);
        else if (!strcmp(a, "--count")) opt_count = atoi(v);
        else if (!strcmp(a, "--senders")) opt_senders = atoi(v);
        else if (!strcmp(a, "--window")) opt_window = atoi(v);
        else if (!strcmp(a, "--parallel")) opt_parallel = atoi(v);
        else if (!strcmp(a, "--warmup")) opt_warmup = atof(v);
        else if (!strcmp(a, "--duration")) opt_duration = atof(v);
        else if (!strcmp(a, "--drain")) opt_drain = atof(v);
        else if (!strcmp(a, "--quiet")) opt_quiet = atof(v);
        else if (!strcmp(a, "--login-timeout")) opt_login_timeout = atof(v);
        else if (!strcmp(a, "--deadline")) opt_deadline = atof(v);
        else if (!strcmp(a, "--prefix")) opt_prefix = v;
        else if (!strcmp(a, "--room")) opt_room = v;
        else if (!strcmp(a, "--rooms")) opt_rooms = atoi(v);
        else if (!strcmp(a, "--rate")) opt_rate = atof(v);
        else usage();
    }
    if (opt_proto == P_THREADED && (opt_rooms || opt_room)) {
        fprintf(stderr, "loadgen: the threaded baseline has one room: no --room or --rooms\n");
        exit(64);
    }
    if (!opt_room) opt_room = opt_proto == P_LINE ? "lobby" : "bench";
    if (strlen(opt_room) > 24 || opt_rooms < 0 || opt_rooms > 1000000 || opt_rate < 0) usage();
    if (opt_count < 0) opt_count = opt_clients - opt_first;
    if (n_ports < 1 || opt_clients <= 0 || opt_count <= 0 || opt_first + opt_count > opt_clients ||
        opt_senders < 0 || opt_senders > opt_clients || opt_window < 1 || opt_window > 64 || opt_parallel < 1)
        usage();
    if (opt_mode == M_FANOUT && opt_senders < 1) usage();
    step = opt_senders ? opt_clients / opt_senders : 1;

    struct rlimit rl;  /* as many descriptors as we are allowed */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);

    clients = calloc((size_t)opt_count, sizeof *clients);
    if (!clients) fail("out of memory");
    for (int i = 0; i < opt_count; i++) {
        struct client *c = &clients[i];
        int gid = opt_first + i;
        c->fd = -1;
        c->sender = (opt_senders && gid % step == 0 && gid / step < opt_senders) ? gid / step : -1;
        c->room = room_of(gid);
        c->port = port_of(gid);
        if (opt_mode == M_FANOUT) {
            c->last = calloc((size_t)opt_senders, sizeof *c->last);
            if (!c->last) fail("out of memory");
        }
    }

    sender_port = calloc((size_t)opt_senders + 1, sizeof *sender_port);
    if (!sender_port) fail("out of memory");
    for (int k = 0; k < opt_senders; k++) sender_port[k] = port_of(k * step);

    local_senders_at = calloc((size_t)opt_count + 1, sizeof *local_senders_at);
    if (!local_senders_at) fail("out of memory");
    for (int i = 0; i < opt_count; i++)
        if (clients[i].sender >= 0) local_senders_at[n_local_senders++] = i;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = STDIN_TAG};
    bool watch_stdin = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &sev) == 0;
    if (opt_rate > 0) {  /* open loop: a timer for the next due line, finer than epoll_wait's ms */
        timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event tev = {.events = EPOLLIN, .data.u32 = TIMER_TAG};
        if (timer_fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &tev) != 0) fail("timerfd: %s", strerror(errno));
    }
    struct epoll_event events[MAX_EVENTS];

    int64_t t_start = now_ns();
    int64_t deadline = t_start + (int64_t)(opt_deadline * NS);
    int64_t login_deadline = t_start + (int64_t)(opt_login_timeout * NS);
    bool announced = false;

    for (;;) {
        int64_t now = now_ns();
        if (now > deadline) fail("deadline of %.0f s reached", opt_deadline);
        while (launched < opt_count && in_progress < opt_parallel) launch(launched);

        bool all_done = launched == opt_count && in_progress == 0;
        if (opt_mode == M_CONNECT || opt_mode == M_STORM) {
            if (all_done) break;
            if (now > login_deadline) fail("%s scenario took longer than %.0f s",
                                           opt_mode == M_STORM ? "storm" : "connect", opt_login_timeout);
        } else if (!announced) {
            if (all_done) {
                if (ready < opt_count) fail("%d of %d clients failed to log in", opt_count - ready, opt_count);
                printf("{\"event\":\"ready\",\"ready\":%d,\"login_s\":%.6f}\n", ready, secs(now - t_start));
                fflush(stdout);
                announced = true;
            } else if (now > login_deadline) {
                fail("login timed out after %.0f s", opt_login_timeout);
            }
        } else if (opt_mode == M_IDLE) {
            if (quit_requested) break;
        } else {  /* fanout, everyone logged in */
            if (quit_requested && !t_go) break;
            if (t_go && !started && now >= t_go) {
                started = sending = true;
                for (int k = 0; k < n_local_senders; k++) {  /* open loop: senders spread over one interval */
                    struct client *c = &clients[local_senders_at[k]];
                    c->due0 = t_go + (opt_rate > 0 ? (int64_t)((double)NS / opt_rate * c->sender / opt_senders) : 0);
                }
                for (int i = 0; i < opt_count; i++) top_up(&clients[i]);
            }
            if (started && !window_open && now >= t_warm_end) {
                window_open = true;
                cpu_window_start = cpu_seconds();
            }
            if (started && !window_closed && now >= t_end) {
                window_closed = true;
                sending = false;
                cpu_window = cpu_seconds() - cpu_window_start;
                t_drain_start = now;
                if (!t_last_payload) t_last_payload = now;
            }
            if (sending && opt_rate > 0) {
                int64_t due = pace(now);
                if (due) {
                    struct itimerspec when = {.it_value = {.tv_sec = due / NS, .tv_nsec = due % NS}};
                    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &when, NULL);
                }
            }
            if (window_closed) {
                bool idle_senders = true;
                for (int i = 0; i < opt_count && idle_senders; i++)
                    if (clients[i].sender >= 0 && clients[i].inflight > 0 && clients[i].state == S_READY)
                        idle_senders = false;
                bool complete = opt_count == opt_clients && received_total == expected_total;
                if (idle_senders && complete) drain_end = "complete";
                else if (now - t_last_payload > (int64_t)(opt_quiet * NS)) drain_end = "quiet";
                else if (now - t_drain_start > (int64_t)(opt_drain * NS)) drain_end = "limit";
                if (drain_end[0]) break;
            }
        }

        int timeout = 100;
        if (t_go && !started) timeout = (int)((t_go - now) / 1000000);
        else if (started && !window_open) timeout = (int)((t_warm_end - now) / 1000000);
        else if (window_open && !window_closed) timeout = (int)((t_end - now) / 1000000);
        if (timeout > 100) timeout = 100;
        if (timeout < 0) timeout = 0;
        int n = epoll_wait(epfd, events, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            uint32_t tag = events[i].data.u32;
            if (tag == STDIN_TAG) {
                if (watch_stdin) handle_stdin();
                continue;
            }
            if (tag == TIMER_TAG) {
                uint64_t expirations;
                if (read(timer_fd, &expirations, sizeof expirations) < 0) { /* EAGAIN: nothing to clear */ }
                continue;
            }
            struct client *c = &clients[tag];
            if (c->state == S_CLOSED || c->state == S_UNUSED) continue;
            if (events[i].events & (EPOLLOUT | EPOLLERR)) handle_writable(c);
            if (c->state == S_CLOSED) continue;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) handle_readable(c);
        }
    }
    int64_t now = now_ns();
    report(now);
    for (int i = 0; i < opt_count; i++) close_client(&clients[i], false);
    return 0;
}
