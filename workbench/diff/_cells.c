/* The rows of two SQLite rowid tables whose stored cells differ, read from their leaf pages.
 *
 * Both sides' leaves are given in key order (the page numbers come from sqlitepages.walk_tree);
 * their cells are merged by rowid and compared byte for byte: the rowid, the payload size, the
 * payload kept on the leaf and, for a value too long for a page, the overflow pages' content.
 * Two cells with the same bytes are the same row (the record format is self-describing; the
 * caller checks that both files use the same text encoding and page layout). Every other rowid
 * (different bytes, or on one side only) is reported, as ranges of rowids with no equal row
 * between them. SQLite then compares only those rows, column by column, and decides.
 *
 * Pages are read with pread, a run of consecutive leaves at a time, never mapped: a file that a
 * clone's application shrinks meanwhile gives a short read (reported, and the caller compares the
 * table in SQL instead), where a mapping would kill the process. Nothing here writes a file.
 *
 * Built by the package's build hook (hatch_build.py) and loaded with ctypes by cellwalk.py;
 * without a C compiler the diff runs without it, the same changes found more slowly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_PAGES 256          /* consecutive leaves read with one pread (1 MB of 4 KB pages) */

enum { OK = 0, TOO_MANY = 1, MALFORMED = -1, NO_MEMORY = -2 };

/* The interface's version: cellwalk.py loads only a library whose version it knows (one
 * built from an older source, with other arguments, is left unused until rebuilt). */
#define INTERFACE 3
int repro_cells_interface(void) { return INTERFACE; }

/* One side, as the caller describes it. */
typedef struct {
    int fd;                    /* the main database file */
    int wal_fd;                /* its -wal file (-1: none) */
    int64_t npages;            /* pages a reader sees */
    const uint32_t *wal_pgno;  /* pages whose latest committed frame is in the WAL, sorted */
    const int64_t *wal_off;    /* the offset of each one's page image in the -wal file */
    int64_t nwal;
    const uint32_t *leaves;    /* the table's leaf pages to read, in key order */
    int64_t nleaves;
    int64_t cells;             /* out: cells read */
} Side;

typedef struct {
    const Side *s;
    int page_size, usable;
    int64_t most, least;       /* the largest payload a leaf keeps whole; the least it keeps */
    uint8_t *run, *scratch;    /* RUN_PAGES pages; one page for overflow */
    int64_t run_first, run_count;   /* leaves[run_first .. +run_count) are in run */
    int64_t leaf;              /* index into leaves of the current page */
    const uint8_t *page;
    int hdr, ncells, cell;
    int started, done;
    int64_t last_rowid;
    /* the current cell */
    int64_t rowid;
    uint64_t payload;
    const uint8_t *local;
    int64_t nlocal;
    uint32_t overflow;
} Cursor;

static uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* SQLite's varint at p, not reading at or past end: its length, or 0 when it does not fit.
 * (One and two bytes first: a payload's size and most rowids.) */
static inline int varint(const uint8_t *p, const uint8_t *end, uint64_t *v) {
    if (p + 1 < end) {
        if (p[0] < 0x80) { *v = p[0]; return 1; }
        if (p[1] < 0x80) { *v = ((uint64_t)(p[0] & 0x7f) << 7) | p[1]; return 2; }
    }
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) {
        if (p + i >= end) return 0;
        x = (x << 7) | (p[i] & 0x7f);
        if (p[i] < 0x80) { *v = x; return i + 1; }
    }
    if (p + 8 >= end) return 0;
    *v = (x << 8) | p[8];
    return 9;
}

static int read_all(int fd, uint8_t *buf, int64_t size, int64_t off) {
    int64_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, buf + done, (size_t)(size - done), (off_t)(off + done));
        if (n <= 0) return 0;
        done += n;
    }
    return 1;
}

/* Where page pgno's committed image lies in the WAL (-1: in the main file). */
static int64_t wal_offset(const Side *s, uint32_t pgno) {
    int64_t lo = 0, hi = s->nwal - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        if (s->wal_pgno[mid] == pgno) return s->wal_off[mid];
        if (s->wal_pgno[mid] < pgno) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* One page into buf, as readers see it. */
static int read_page(const Side *s, int page_size, uint32_t pgno, uint8_t *buf) {
    if (pgno < 1 || (int64_t)pgno > s->npages) return 0;
    int64_t w = s->nwal ? wal_offset(s, pgno) : -1;
    if (w >= 0) return read_all(s->wal_fd, buf, page_size, w);
    return read_all(s->fd, buf, page_size, (int64_t)(pgno - 1) * page_size);
}

/* Read the run of leaves that starts at leaf index i: consecutive page numbers, none in the
 * WAL, one pread; a leaf in the WAL is a run of one. */
static int load_run(Cursor *c, int64_t i) {
    const Side *s = c->s;
    uint32_t first = s->leaves[i];
    int64_t n = 1;
    if (!(s->nwal && wal_offset(s, first) >= 0)) {
        while (n < RUN_PAGES && i + n < s->nleaves && s->leaves[i + n] == first + n
               && (int64_t)(first + n) <= s->npages && !(s->nwal && wal_offset(s, first + n) >= 0))
            n++;
        if (first < 1 || (int64_t)first > s->npages) return 0;
        if (!read_all(s->fd, c->run, n * c->page_size, (int64_t)(first - 1) * c->page_size)) return 0;
    } else if (!read_page(s, c->page_size, first, c->run)) {
        return 0;
    }
    c->run_first = i;
    c->run_count = n;
    return 1;
}

/* Open leaf index i: 1 done, 0 malformed or unreadable. */
static int open_leaf(Cursor *c, int64_t i) {
    if (i < c->run_first || i >= c->run_first + c->run_count)
        if (!load_run(c, i)) return 0;
    c->leaf = i;
    c->page = c->run + (i - c->run_first) * c->page_size;
    c->hdr = c->s->leaves[i] == 1 ? 100 : 0;
    if (c->page[c->hdr] != 13) return 0;                      /* not a table leaf */
    c->ncells = (int)be16(c->page + c->hdr + 3);
    if (c->hdr + 8 + 2 * c->ncells > c->usable) return 0;
    c->cell = 0;
    return 1;
}

/* Parse cell c->cell of the current leaf. */
static inline int parse_cell(Cursor *c) {
    const uint8_t *end = c->page + c->usable;
    uint32_t at = be16(c->page + c->hdr + 8 + 2 * c->cell);
    if (at < (uint32_t)(c->hdr + 8 + 2 * c->ncells) || at >= (uint32_t)c->usable) return 0;
    const uint8_t *p = c->page + at;
    uint64_t size, rowid;
    int k = varint(p, end, &size);
    if (!k) return 0;
    p += k;
    k = varint(p, end, &rowid);
    if (!k) return 0;
    p += k;
    int64_t most = c->most, least = c->least;
    int64_t local;
    if (size > ((uint64_t)1 << 40)) return 0;                  /* SQLite's values stop at 2^31 */
    if ((int64_t)size <= most) {
        local = (int64_t)size;
        c->overflow = 0;
    } else {
        int64_t surplus = least + ((int64_t)size - least) % (c->usable - 4);
        local = surplus <= most ? surplus : least;
        if (p + local + 4 > end) return 0;
        c->overflow = be32(p + local);
        if (!c->overflow) return 0;
    }
    if (p + local > end) return 0;
    c->rowid = (int64_t)rowid;
    c->payload = size;
    c->local = p;
    c->nlocal = local;
    if (c->started && c->rowid <= c->last_rowid) return 0;   /* rowids must rise */
    c->started = 1;
    c->last_rowid = c->rowid;
    return 1;
}

/* Move to the next cell: 1 there is one, 0 the leaves are done, -1 malformed. */
static inline int next_cell(Cursor *c) {
    if (c->done) return 0;
    if (c->page) c->cell++;
    while (!c->page || c->cell >= c->ncells) {
        int64_t i = c->page ? c->leaf + 1 : 0;
        if (i >= c->s->nleaves) { c->page = NULL; c->done = 1; return 0; }
        if (!open_leaf(c, i)) return -1;
    }
    if (!parse_cell(c)) return -1;
    ((Side *)c->s)->cells++;
    return 1;
}

/* Whether two cells hold the same bytes: 1 yes, 0 no, -1 an overflow chain does not read. */
static int same_cell(Cursor *a, Cursor *b) {
    if (a->payload != b->payload || a->nlocal != b->nlocal) return 0;
    if (memcmp(a->local, b->local, (size_t)a->nlocal)) return 0;
    if (!a->overflow) return 1;
    uint64_t left = a->payload - (uint64_t)a->nlocal;
    uint32_t pa = a->overflow, pb = b->overflow;
    int64_t hops = 0;
    while (left > 0) {
        if (!pa || !pb || ++hops > a->s->npages) return -1;
        if (!read_page(a->s, a->page_size, pa, a->scratch) || !read_page(b->s, b->page_size, pb, b->scratch))
            return -1;
        uint64_t n = left < (uint64_t)(a->usable - 4) ? left : (uint64_t)(a->usable - 4);
        if (memcmp(a->scratch + 4, b->scratch + 4, (size_t)n)) return 0;
        left -= n;
        pa = be32(a->scratch);
        pb = be32(b->scratch);
    }
    return 1;
}

typedef struct {
    int64_t *out;
    int64_t cap, n;
    int open;
    int64_t lo, hi;
    int64_t marked;            /* rowids marked */
} Ranges;

static void mark(Ranges *r, int64_t rowid) {
    r->marked++;
    if (!r->open) { r->open = 1; r->lo = rowid; }
    r->hi = rowid;
}

static int close_range(Ranges *r) {
    if (!r->open) return 1;
    r->open = 0;
    if (r->n >= r->cap) return 0;
    r->out[2 * r->n] = r->lo;
    r->out[2 * r->n + 1] = r->hi;
    r->n++;
    return 1;
}

/* The next cell of c whose rowid is at least lo (cells below are skipped): as next_cell. */
static int next_from(Cursor *c, int64_t lo) {
    int h;
    while ((h = next_cell(c)) > 0 && c->rowid < lo)
        ;
    return h;
}

/* The rowid ranges (out: lo, hi pairs, at most cap) holding every row whose cell differs
 * between the two sides' leaves, among the rowids from lo to hi (the leaves may hold others:
 * a caller that splits the work in two gives the leaf on the boundary to both halves);
 * *n_marked: how many rowids they hold, of the cells counted in each side's cells.
 * Returns OK, TOO_MANY (more than cap ranges: compare the table whole), MALFORMED (a page
 * that does not read as a table leaf, or a short read) or NO_MEMORY. */
int repro_changed_rowids(Side *a, Side *b, int page_size, int usable, int64_t lo, int64_t hi,
                         int64_t *out, int64_t cap, int64_t *n_out, int64_t *n_marked) {
    Cursor ca = {0}, cb = {0};
    Ranges r = {out, cap, 0, 0, 0, 0, 0};
    int status = OK;
    if (page_size < 512 || page_size > 65536 || usable < 480 || usable > page_size) return MALFORMED;
    a->cells = b->cells = 0;
    ca.s = a; cb.s = b;
    ca.page_size = cb.page_size = page_size;
    ca.usable = cb.usable = usable;
    ca.most = cb.most = usable - 35;
    ca.least = cb.least = (int64_t)(usable - 12) * 32 / 255 - 23;
    ca.run = malloc((size_t)RUN_PAGES * page_size);
    cb.run = malloc((size_t)RUN_PAGES * page_size);
    ca.scratch = malloc((size_t)page_size);
    cb.scratch = malloc((size_t)page_size);
    ca.run_count = cb.run_count = 0;
    if (!ca.run || !cb.run || !ca.scratch || !cb.scratch) { status = NO_MEMORY; goto done; }
    int ha = next_from(&ca, lo), hb = next_from(&cb, lo);
    while ((ha > 0 && ca.rowid <= hi) || (hb > 0 && cb.rowid <= hi)) {
        if (ha < 0 || hb < 0) { status = MALFORMED; goto done; }
        if (ha > 0 && ca.rowid > hi) ha = 0;     /* past the upper bound: that side is done */
        if (hb > 0 && cb.rowid > hi) hb = 0;
        if (hb <= 0 || (ha > 0 && ca.rowid < cb.rowid)) {
            mark(&r, ca.rowid);
            ha = next_cell(&ca);
        } else if (ha <= 0 || cb.rowid < ca.rowid) {
            mark(&r, cb.rowid);
            hb = next_cell(&cb);
        } else {
            int same = same_cell(&ca, &cb);
            if (same < 0) { status = MALFORMED; goto done; }
            if (same) {
                if (!close_range(&r)) { status = TOO_MANY; goto done; }
            } else {
                mark(&r, ca.rowid);
            }
            ha = next_cell(&ca);
            hb = next_cell(&cb);
        }
    }
    if (ha < 0 || hb < 0) { status = MALFORMED; goto done; }
    if (!close_range(&r)) status = TOO_MANY;
done:
    free(ca.run); free(cb.run); free(ca.scratch); free(cb.scratch);
    *n_out = r.n;
    *n_marked = r.marked;
    return status;
}
