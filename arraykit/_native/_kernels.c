/*
 * Compiled kernels for NumPy arrays and torch's CPU tensors.
 *
 * On a few hundred elements a NumPy ufunc call costs 0.2-0.4 us of dispatch
 * whatever it computes, and the careful formulas take several calls where
 * the textbook takes one or two; here each primitive is one call that reads
 * its input once. On large arrays the loops run on vectors (eight doubles,
 * or sixteen floats for float32 arithmetic; compiled for the processor's
 * widest), with an exp of their own, and split the work over threads where
 * the caller asks (torch does, with its thread count; NumPy arrays get one,
 * as NumPy's own functions).
 *
 * Every function takes C-contiguous buffers of one native float type ('f' or
 * 'd') and returns False (or None) when it cannot serve them, or when a
 * special value needs the generic formulas: the caller then discards what
 * was written and takes another path. float32 is computed in double and
 * rounded once, except where a comment says otherwise.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

/* Knuth's TwoSum and the compensated sums below rely on every operation being
 * rounded on its own: no fused multiply-adds. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#elif defined(_MSC_VER)
#pragma fp_contract(off)
#endif

typedef struct {
    Py_buffer view;
    char kind; /* 'f' or 'd' */
    Py_ssize_t n;
    int dense; /* C-contiguous; else an input read through gather() */
} Buffer;

/* Elementwise work is split in stretches of this many elements; the losses
 * sum each on its own and add the sums pairwise, so that a total does not
 * depend on how many threads took them. A strided input is gathered a
 * stretch (or whole rows of at most a stretch) at a time into scratch on
 * the stack. */
#define STRETCH 4096

/* Whether an address holds items of this size at their natural alignment.
 * The kernels read and write through typed pointers, which for misaligned
 * memory (np.frombuffer with an odd offset, unaligned record fields) is
 * undefined: such buffers are not served, and the Python side hands over an
 * aligned copy instead (the same bits either way). */
static int
aligned(const void *address, Py_ssize_t itemsize)
{
    return ((uintptr_t)address & (uintptr_t)(itemsize - 1)) == 0;
}

/* A tensor's memory as (address, elements, kind): torch's dense CPU tensors have
 * no buffer interface, and a NumPy view of one costs more than a kernel call on
 * a few hundred elements. The caller keeps the tensor alive and vouches that
 * the address holds that many elements of that kind, contiguous. 1 on
 * success, 0 (no exception set) for anything else. */
static int
acquire_address(PyObject *spec, Buffer *b)
{
    if (PyTuple_GET_SIZE(spec) != 3 || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 2))) {
        return 0;
    }
    void *address = PyLong_AsVoidPtr(PyTuple_GET_ITEM(spec, 0));
    Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 1));
    const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 2));
    if (PyErr_Occurred() || address == NULL || n < 0 || kind == NULL ||
        (strcmp(kind, "d") != 0 && strcmp(kind, "f") != 0)) {
        PyErr_Clear();
        return 0;
    }
    if (!aligned(address, kind[0] == 'd' ? 8 : 4)) {
        return 0;
    }
    b->kind = kind[0];
    b->n = n;
    b->dense = 1;
    b->view.buf = address;
    b->view.obj = NULL; /* nothing to release */
    b->view.itemsize = kind[0] == 'd' ? 8 : 4;
    b->view.len = n * b->view.itemsize;
    return 1;
}

/* Whether a strided buffer's every item is at its natural alignment. */
static int
aligned_strides(const Py_buffer *view)
{
    for (int d = 0; d < view->ndim; d++) {
        if (view->shape[d] > 1 && view->strides[d] % view->itemsize != 0) {
            return 0;
        }
    }
    return 1;
}

/* 1 on success; 0 (no exception set) when obj is not an aligned buffer of
 * native float32/float64, C-contiguous unless `strided` (an input the
 * kernel reads through gather(): any strides, negative ones included). */
static int
acquire(PyObject *obj, Buffer *b, int writable, int strided)
{
    if (PyTuple_CheckExact(obj)) {
        return acquire_address(obj, b);
    }
    int flags = PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &b->view, flags | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        if (!strided || PyObject_GetBuffer(obj, &b->view, flags | PyBUF_STRIDES) < 0) {
            PyErr_Clear();
            return 0;
        }
    }
    const char *f = b->view.format;
    if (f != NULL && (f[0] == '@' || f[0] == '=')) {
        f++;
    }
    b->dense = !strided || PyBuffer_IsContiguous(&b->view, 'C');
    if (f == NULL || (strcmp(f, "d") != 0 && strcmp(f, "f") != 0) ||
        !aligned(b->view.buf, b->view.itemsize) || (!b->dense && !aligned_strides(&b->view))) {
        PyBuffer_Release(&b->view);
        return 0;
    }
    b->kind = f[0];
    b->n = b->view.len / b->view.itemsize;
    return 1;
}

/* Acquire `count` buffers of one length: those before `first_scratch` of
 * one float kind (the caller's arrays), those from it on float64 scratch,
 * which may be None (pointer NULL). Bit i of `writable` marks an output,
 * bit i of `strided` an input that may have any strides.
 * 1 on success, 0 (everything released) when the buffers cannot be served. */
static int
acquire_all(PyObject *const *objs, Buffer *bufs, int count, int writable, int strided,
            int first_scratch)
{
    int got = 0;
    for (; got < count; got++) {
        Buffer *b = &bufs[got];
        if (got >= first_scratch && objs[got] == Py_None) {
            b->view.buf = NULL;
            b->view.obj = NULL;
            b->n = bufs[0].n;
            b->kind = 'd';
            b->dense = 1;
            continue;
        }
        if (!acquire(objs[got], b, (writable >> got) & 1, (strided >> got) & 1)) {
            break;
        }
        char kind = got >= first_scratch ? 'd' : bufs[0].kind;
        if (b->kind != kind || b->n != bufs[0].n) {
            PyBuffer_Release(&b->view);
            break;
        }
    }
    if (got == count) {
        return 1;
    }
    while (got-- > 0) {
        if (bufs[got].view.obj != NULL) {
            PyBuffer_Release(&bufs[got].view);
        }
    }
    return 0;
}

static void
release_all(Buffer *bufs, int count)
{
    for (int i = 0; i < count; i++) {
        if (bufs[i].view.obj != NULL) {
            PyBuffer_Release(&bufs[i].view);
        }
    }
}

/* Read a row length and acquire buffers holding whole rows of it:
 * 1 served, 0 not served (nothing held), -1 with an exception set. */
static int
acquire_rows(PyObject *const *objs, Buffer *bufs, int count, int writable, int strided,
             int first_scratch, PyObject *length, Py_ssize_t *cols)
{
    *cols = PyLong_AsSsize_t(length);
    if (*cols == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*cols <= 0 || !acquire_all(objs, bufs, count, writable, strided, first_scratch)) {
        return 0;
    }
    /* A strided input's rows are gathered into a stretch's scratch, whole. */
    if (bufs[0].n % *cols != 0 || (!bufs[0].dense && *cols > STRETCH)) {
        release_all(bufs, count);
        return 0;
    }
    return 1;
}

/* A reducing kernel's buffers, args (x, out, length, ...): x of whole rows
 * (`strided`: in any strides), out dense, of x's kind, one item per row. */
static int
acquire_reduced(PyObject *const *args, Buffer *b, int strided, Py_ssize_t *length)
{
    int ok = acquire_rows(args, b, 1, 0x0, strided, 1, args[2], length);
    if (ok > 0 && !acquire(args[1], &b[1], 1, 0)) {
        release_all(b, 1);
        ok = 0;
    }
    else if (ok > 0 && (b[1].kind != b[0].kind || b[1].n != b[0].n / *length)) {
        release_all(b, 2);
        ok = 0;
    }
    return ok;
}

/* m items `step` bytes apart from `from` to `to`, four at a time. */
#define GATHER_ITEMS(NAME, T)                                                              \
    static void NAME(T *restrict to, const char *from, Py_ssize_t step, Py_ssize_t m)      \
    {                                                                                      \
        Py_ssize_t j = 0;                                                                  \
        for (; j + 4 <= m; j += 4, from += 4 * step) {                                     \
            T a = *(const T *)from, b = *(const T *)(from + step);                         \
            T c = *(const T *)(from + 2 * step), d = *(const T *)(from + 3 * step);        \
            to[j] = a;                                                                     \
            to[j + 1] = b;                                                                 \
            to[j + 2] = c;                                                                 \
            to[j + 3] = d;                                                                 \
        }                                                                                  \
        for (; j < m; j++, from += step) {                                                 \
            to[j] = *(const T *)from;                                                      \
        }                                                                                  \
    }
GATHER_ITEMS(gather_doubles, double)
GATHER_ITEMS(gather_floats, float)

/* Copy n items of a strided buffer, from position `start` in C order on, to
 * dst: the one reader of strided memory, under every kernel that takes it.
 * Offsets are kept in bytes, and a pointer is formed only to read an item. */
static void
gather(const Buffer *b, Py_ssize_t start, Py_ssize_t n, void *dst)
{
    const Py_buffer *v = &b->view;
    int last = v->ndim - 1;
    Py_ssize_t index[PyBUF_MAX_NDIM], offset = 0, rest = start;
    for (int d = last; d >= 0; d--) {
        index[d] = rest % v->shape[d];
        rest /= v->shape[d];
        offset += index[d] * v->strides[d];
    }
    const char *base = v->buf;
    Py_ssize_t step = v->strides[last], size = v->itemsize;
    char *to = dst;
    while (n > 0) {
        Py_ssize_t m = v->shape[last] - index[last];
        m = m < n ? m : n;
        if (step == size) {
            memcpy(to, base + offset, (size_t)(m * size));
        }
        else if (size == 8) {
            gather_doubles((double *)to, base + offset, step, m);
        }
        else {
            gather_floats((float *)to, base + offset, step, m);
        }
        to += m * size;
        n -= m;
        index[last] += m;
        offset += m * step;
        /* Past the end of the last axis: carry into the axes before it. */
        for (int d = last; d > 0 && index[d] == v->shape[d]; d--) {
            offset += v->strides[d - 1] - index[d] * v->strides[d];
            index[d] = 0;
            index[d - 1]++;
        }
    }
}

/* Items start to start + n of b as a dense buffer: b's own memory where it
 * is dense, else gathered into scratch (room for n items of b's kind). */
static Buffer
piece(const Buffer *b, Py_ssize_t start, Py_ssize_t n, void *scratch)
{
    Buffer p = *b;
    p.n = n;
    p.dense = 1;
    if (b->dense) {
        p.view.buf = (char *)b->view.buf + start * b->view.itemsize;
    }
    else {
        gather(b, start, n, scratch);
        p.view.buf = scratch;
    }
    return p;
}

#define LOAD(b, i) ((b)->kind == 'd' ? ((const double *)(b)->view.buf)[i] \
                                     : (double)((const float *)(b)->view.buf)[i])
#define STORE(b, i, v) ((b)->kind == 'd' ? (void)(((double *)(b)->view.buf)[i] = (v)) \
                                         : (void)(((float *)(b)->view.buf)[i] = (float)(v)))


/* ---- vectors and threads ------------------------------------------------ */

/* Eight doubles at a time, written with the compiler's vector extensions:
 * each loop below is compiled for AVX-512 and AVX2 beside the baseline, and
 * the processor's best is chosen when the module loads. Elsewhere, or built
 * with -DARRAYKIT_NO_CLONES (to measure one instruction level: the baseline,
 * or with -march=x86-64-v3 AVX2 alone), the same code compiles to whatever
 * vectors the target has (or to scalars). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && defined(__GLIBC__) && !defined(ARRAYKIT_NO_CLONES) /* musl has no clone resolver */
#define VECTOR_CLONES_ARE_CLONES
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
/* The same, with a * b + c fused where the processor can: in the exps'
 * polynomials that is faster and more accurate (measured: sigmoid_derivative
 * a third faster, softmax a sixth in float32 and a quarter in float64).
 * TwoSum and the compensated sums have no product to fuse. Not everywhere:
 * the line's Adagrad loop must round every operation on its own, as the
 * array code does. */
#define VECTOR_CLONES_FUSED                                                                 \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"),          \
                   optimize("fp-contract=fast")))
#else
#define VECTOR_CLONES
#if defined(__GNUC__) && !defined(__clang__)
/* Fused where the target has fused multiply-adds (-march=x86-64-v3, Arm). */
#define VECTOR_CLONES_FUSED __attribute__((optimize("fp-contract=fast")))
#else
#define VECTOR_CLONES_FUSED
#endif
#endif
/* Which instructions the vector code was built for, as the sweep records it. */
#if defined(VECTOR_CLONES_ARE_CLONES)
#define INSTRUCTIONS "clones: x86-64-v4, x86-64-v3, baseline (the processor's best)"
#elif defined(__AVX512F__)
#define INSTRUCTIONS "x86-64-v4 (AVX-512) only"
#elif defined(__AVX2__)
#define INSTRUCTIONS "x86-64-v3 (AVX2) only"
#elif defined(__x86_64__)
#define INSTRUCTIONS "x86-64 baseline (SSE2) only"
#else
#define INSTRUCTIONS "the target's default"
#endif
/* Every helper the vector loops call is always inlined: a helper left out of
 * line is compiled for the baseline alone, and the AVX2 and AVX-512 clones
 * of a loop would call it per element. */
#define INLINE static inline __attribute__((always_inline))
/* Vectors wider than the baseline's registers pass between inlined helpers
 * only: the note on their calling convention does not apply. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#define LANES 8
typedef double vdouble __attribute__((vector_size(8 * LANES)));
typedef float vfloat __attribute__((vector_size(4 * LANES)));
typedef long long vlong __attribute__((vector_size(8 * LANES)));
/* float32 arithmetic in vectors of the same width: twice the lanes. */
typedef float vfloat_wide __attribute__((vector_size(8 * LANES)));
typedef int vint_wide __attribute__((vector_size(8 * LANES)));
#define WIDE (2 * LANES)

typedef double vdouble_wide __attribute__((vector_size(16 * LANES)));

/* Comparisons of vectors. GCC (12) compiles a floating-point comparison of
 * vectors wider than the target's registers (these 64-byte vectors, where
 * the target is AVX2) into one scalar comparison and branch per lane; made
 * of comparisons of halves, each half is one instruction from AVX on. Where the build is for AVX2 alone (or the
 * baseline), the halves serve. The clones keep whole comparisons: the
 * AVX-512 clone's are one instruction, where halves cost it a tenth to a
 * quarter, and a choice per clone would need each level's own vector width
 * (docs/benchmarks.md, "At each instruction level"). */
#if defined(__x86_64__) && !defined(__AVX512F__) && !defined(VECTOR_CLONES_ARE_CLONES)
#define WHOLE_COMPARES 0
#else
#define WHOLE_COMPARES 1
#endif
typedef double vdouble_half __attribute__((vector_size(4 * LANES)));
typedef long long vlong_half __attribute__((vector_size(4 * LANES)));
typedef int vint_half __attribute__((vector_size(4 * LANES)));
#define HALVES_COMPARE(NAME, VT, MT, HT, HMT, OP)                                          \
    INLINE MT NAME(VT a, VT b)                                                             \
    {                                                                                      \
        if (WHOLE_COMPARES) {                                                              \
            return a OP b;                                                                 \
        }                                                                                  \
        HT x[2], y[2];                                                                     \
        HMT r[2];                                                                          \
        MT mask;                                                                           \
        memcpy(x, &a, sizeof a);                                                           \
        memcpy(y, &b, sizeof b);                                                           \
        r[0] = x[0] OP y[0];                                                               \
        r[1] = x[1] OP y[1];                                                               \
        memcpy(&mask, r, sizeof mask);                                                     \
        return mask;                                                                       \
    }
HALVES_COMPARE(lanes_lt, vdouble, vlong, vdouble_half, vlong_half, <)
HALVES_COMPARE(lanes_gt, vdouble, vlong, vdouble_half, vlong_half, >)
HALVES_COMPARE(lanes_ge, vdouble, vlong, vdouble_half, vlong_half, >=)
HALVES_COMPARE(wide_lt, vfloat_wide, vint_wide, vfloat, vint_half, <)
HALVES_COMPARE(wide_gt, vfloat_wide, vint_wide, vfloat, vint_half, >)
HALVES_COMPARE(wide_ge, vfloat_wide, vint_wide, vfloat, vint_half, >=)
HALVES_COMPARE(index_ge_lanes, vlong, vlong, vlong_half, vlong_half, >=)
HALVES_COMPARE(index_ge_wide, vint_wide, vint_wide, vint_half, vint_half, >=)

/* Eight floats in double lanes. GCC (12) splits the direct conversion into
 * four-lane ones; the conversion of twice the lanes it emits as two whole
 * vector instructions, and the unused half is left out. */
INLINE vdouble
to_double(vfloat v)
{
    vfloat_wide twice = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4,
                                                5, 6, 7);
    vdouble_wide w = __builtin_convertvector(twice, vdouble_wide);
    vdouble lo;
    memcpy(&lo, &w, sizeof lo);
    return lo;
}

INLINE vdouble
load_lanes(const Buffer *b, Py_ssize_t i)
{
    if (b->kind == 'd') {
        vdouble v;
        memcpy(&v, (const double *)b->view.buf + i, sizeof v);
        return v;
    }
    vfloat v;
    memcpy(&v, (const float *)b->view.buf + i, sizeof v);
    return to_double(v);
}

INLINE void
store_lanes(const Buffer *b, Py_ssize_t i, vdouble v)
{
    if (b->kind == 'd') {
        memcpy((double *)b->view.buf + i, &v, sizeof v);
        return;
    }
    vfloat f = __builtin_convertvector(v, vfloat);
    memcpy((float *)b->view.buf + i, &f, sizeof f);
}

INLINE double
lanes_total(vdouble v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* Work split over threads: fn(ctx, begin, end) for consecutive ranges of
 * `items` (rows, or stretches of elements) that together cover them. The
 * calling thread takes a share; a small pool of workers, started on first
 * need, takes the rest. Workers spin briefly between jobs (a job that
 * follows at once starts without a wake-up) and then sleep. A job submitted
 * while another runs (from a second Python thread), or where there are no
 * POSIX threads, runs on the calling thread alone. Where share_threads has
 * attached torch's OpenMP runtime, its team takes the parts instead (see
 * share_threads in _native/torch.py for why). Called without the GIL. */
typedef void (*RangeFn)(void *ctx, Py_ssize_t begin, Py_ssize_t end);

#define MAX_THREADS 64

/* Threads need C11 atomics and POSIX threads; -DARRAYKIT_NO_THREADS leaves
 * them out on purpose (CI builds the kernels so, as C99). */
#if defined(_WIN32) || !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L \
    || defined(__STDC_NO_ATOMICS__) || defined(ARRAYKIT_NO_THREADS)
#define HAVE_POOL 0
#else
#define HAVE_POOL 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>

static struct {
    pthread_mutex_t job, lock;
    pthread_cond_t wake;
    int workers;
    atomic_uint generation;
    /* The job's part count (high half) and next unclaimed part (low half),
     * in one word, so that a claim can never pair a stale part number with
     * the next job's count. */
    atomic_ullong claims;
    atomic_int unfinished;
    RangeFn fn;
    void *ctx;
    Py_ssize_t items;
} pool = {.job = PTHREAD_MUTEX_INITIALIZER,
           .lock = PTHREAD_MUTEX_INITIALIZER,
           .wake = PTHREAD_COND_INITIALIZER};

/* GOMP_parallel(fn, data, threads, flags) of torch's OpenMP runtime, once
 * attached: fn(data) on each thread of a team, the caller's among them;
 * returns when all are done. Every OpenMP runtime on Linux and macOS has it
 * (GCC's own ABI). */
typedef void (*TeamFn)(void (*)(void *), void *, unsigned, unsigned);
static TeamFn team_parallel;

static void
pool_take_parts(void)
{
    for (;;) {
        unsigned long long claim = atomic_fetch_add(&pool.claims, 1);
        Py_ssize_t part = (Py_ssize_t)(claim & 0xffffffffu), parts = (Py_ssize_t)(claim >> 32);
        if (part >= parts) {
            return;
        }
        Py_ssize_t begin = pool.items * part / parts;
        Py_ssize_t end = pool.items * (part + 1) / parts;
        pool.fn(pool.ctx, begin, end);
        atomic_fetch_sub_explicit(&pool.unfinished, 1, memory_order_release);
    }
}

static void *
pool_worker(void *unused)
{
    unsigned seen = atomic_load(&pool.generation);
    for (;;) {
        unsigned now = atomic_load_explicit(&pool.generation, memory_order_acquire);
        for (long spin = 0; now == seen && spin < (1L << 14); spin++) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            now = atomic_load_explicit(&pool.generation, memory_order_acquire);
        }
        if (now == seen) {
            pthread_mutex_lock(&pool.lock);
            while ((now = atomic_load(&pool.generation)) == seen) {
                pthread_cond_wait(&pool.wake, &pool.lock);
            }
            pthread_mutex_unlock(&pool.lock);
        }
        seen = now;
        pool_take_parts();
    }
    return unused;
}

/* A forked child has none of the workers (nor, possibly, free locks), nor
 * the OpenMP runtime's. */
static void
pool_forget(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    pool.job = fresh;
    pool.lock = fresh;
    pool.wake = cond;
    pool.workers = 0;
    team_parallel = NULL;
}


typedef struct {
    RangeFn fn;
    void *ctx;
    Py_ssize_t items;
    Py_ssize_t parts;
    atomic_llong next;
} TeamJob;

static void
team_take_parts(void *data)
{
    TeamJob *job = data;
    for (;;) {
        Py_ssize_t part = (Py_ssize_t)atomic_fetch_add(&job->next, 1);
        if (part >= job->parts) {
            return;
        }
        job->fn(job->ctx, job->items * part / job->parts, job->items * (part + 1) / job->parts);
    }
}

static void
parallel(RangeFn fn, void *ctx, Py_ssize_t items, int threads)
{
    threads = threads > MAX_THREADS ? MAX_THREADS : threads;
    TeamFn team = team_parallel;
    if (team != NULL && threads >= 2 && items >= 2) {
        /* Parts claimed as each thread finishes, as below. Teams started from
         * several threads at once are the runtime's to keep apart. */
        TeamJob job = {.fn = fn, .ctx = ctx, .items = items,
                       .parts = items < 4 * threads ? items : 4 * threads};
        atomic_init(&job.next, 0);
        team(team_take_parts, &job, (unsigned)threads, 0);
        return;
    }
    if (threads < 2 || items < 2 || pthread_mutex_trylock(&pool.job) != 0) {
        fn(ctx, 0, items);
        return;
    }
    while (pool.workers < threads - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, pool_worker, NULL);
        pthread_attr_destroy(&attr);
        if (failed) {
            break;
        }
        pool.workers++;
    }
    /* Four parts per thread, claimed as each finishes: a worker that the
     * system runs late (another process's threads, or torch's spinning on
     * the same core) leaves its parts to the others instead of being waited
     * for. */
    int running = pool.workers + 1 < threads ? pool.workers + 1 : threads;
    int parts = items < 4 * running ? (int)items : 4 * running;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.items = items;
    atomic_store(&pool.unfinished, parts);
    atomic_store(&pool.claims, (unsigned long long)parts << 32);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    pool_take_parts();
    while (atomic_load_explicit(&pool.unfinished, memory_order_acquire) > 0) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_unlock(&pool.job);
}
#endif

#if !HAVE_POOL
static void
parallel(RangeFn fn, void *ctx, Py_ssize_t items, int threads)
{
    (void)threads;
    fn(ctx, 0, items);
}
#endif


/* Threads worth using for `elements` elements: one per 2^15 (torch's own
 * grain), at most `threads`. */
static int
threads_for(Py_ssize_t elements, int threads)
{
    Py_ssize_t useful = elements >> 15;
    return useful < threads ? (int)(useful > 0 ? useful : 1) : threads;
}

/* A result this large is always fresh memory from the system, never memory
 * the allocator recycles: glibc maps anything over its largest mmap threshold
 * anew and unmaps it when freed. */
#define FRESH_BYTES ((Py_ssize_t)32 << 20)

/* Fault in the pages of a large, fresh result from the calling thread, in
 * one call, before several threads write it. Otherwise each page is faulted
 * in by whichever thread first writes to it, and where a hypervisor backs
 * guest memory lazily (and takes back what the guest frees), faults that
 * several threads take at once contend for it: a softmax of 1e7 doubles
 * took up to five times as long as with its result's pages in place
 * (docs/benchmark-records.md). Memory already in place is left alone: populating
 * pages that are present costs a page-table walk per page. Linux alone
 * (MADV_POPULATE_WRITE since 5.14; older kernels refuse it, harmlessly). */
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static void
populate_fresh(const Buffer *out)
{
    Py_ssize_t bytes = out->n * (out->kind == 'd' ? 8 : 4);
    if (bytes < FRESH_BYTES) {
        return;
    }
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), begin = (uintptr_t)out->view.buf;
    unsigned char resident = 1;
    /* The middle page: the allocator's header may have touched the first. */
    if (mincore((void *)((begin + bytes / 2) & ~(page - 1)), page, &resident) == 0 &&
        !(resident & 1)) {
        uintptr_t start = begin & ~(page - 1);
        (void)madvise((void *)start, begin + bytes - start, MADV_POPULATE_WRITE);
    }
}
#else
static void
populate_fresh(const Buffer *out)
{
    (void)out;
}
#endif

/* fn over `items`, split over threads as `elements` warrants, writing the
 * result `out` (NULL: a sum). Releasing and taking back the GIL costs about
 * a tenth of a microsecond: small arrays, done in less, keep it. */
static void
run(RangeFn fn, void *job, Py_ssize_t items, Py_ssize_t elements, int threads, const Buffer *out)
{
    if (elements < 4096) {
        fn(job, 0, items);
        return;
    }
    threads = threads_for(elements, threads);
    Py_BEGIN_ALLOW_THREADS
    if (threads >= 2 && out != NULL) {
        populate_fresh(out);
    }
    parallel(fn, job, items, threads);
    Py_END_ALLOW_THREADS
}

/* The losses' terms, by "power": 1 |a − b|, 2 (a − b)², LOGISTIC the
 * logistic loss of logits a and labels b (binary_cross_entropy_with_logits),
 * PROBABILITIES the binary cross-entropy of probabilities a and labels b. */
#define LOGISTIC 3
#define PROBABILITIES 4
INLINE vdouble logistic_lanes(vdouble z, vdouble y);
INLINE vdouble binary_cross_entropy_lanes(vdouble p, vdouble y);
INLINE vdouble error_power_lanes(vdouble a, vdouble b, int power);

INLINE double
error_power(double a, double b, int power)
{
    if (power >= LOGISTIC) { /* the lanes' arithmetic: the same bits in every position */
        return error_power_lanes((vdouble){0} + a, (vdouble){0} + b, power)[0];
    }
    double d = fabs(a - b);
    return power == 2 ? d * d : d;
}

INLINE vdouble
error_power_lanes(vdouble a, vdouble b, int power)
{
    vdouble d = a - b;
    if (power == LOGISTIC) {
        return logistic_lanes(a, b);
    }
    if (power == PROBABILITIES) {
        return binary_cross_entropy_lanes(a, b);
    }
    if (power == 2) {
        return d * d;
    }
    return (vdouble)((vlong)d & ((vlong){0} + 0x7fffffffffffffffLL)); /* |d| */
}

/* ---- elementwise ------------------------------------------------------- */

/* exp(s) for s <= 0 (or NaN), a vector at a time: Cody and Waite's
 * reduction s = n ln2 + r, |r| <= ln2/2, with ln2 in two parts (n ln2_hi is
 * exact); exp(r) by a polynomial interpolating it at Chebyshev nodes; 2^n
 * from exponent bits. In double, degree 11 (within 5e-18 of exp(r)); in
 * float, for float32 results, degree 6 (within 2e-8 with its coefficients
 * rounded to float), with twice the lanes. Measured error: see
 * docs/numerics.md. */
INLINE vdouble
select_lanes(vlong mask, vdouble a, vdouble b)
{
    return (vdouble)(((vlong)a & mask) | ((vlong)b & ~mask));
}

INLINE vfloat_wide
select_wide(vint_wide mask, vfloat_wide a, vfloat_wide b)
{
    return (vfloat_wide)(((vint_wide)a & mask) | ((vint_wide)b & ~mask));
}

/* Adding these rounds to an integer, kept in the low bits of the sum. */
#define SHIFTER 0x1.8p52
#define SHIFTER_FLOAT 0x1.8p23f

/* 2^(n + 64), n integral in [-1086, 0]: a normal number. The exps below
 * multiply by it and then by 2^-64, so that a subnormal result is rounded
 * once, by the last multiplication. */
INLINE vdouble
power_of_two(vdouble n)
{
    vdouble k = n + SHIFTER, shifter = (vdouble){0} + SHIFTER;
    return (vdouble)(((vlong)k - (vlong)shifter + (1023 + 64)) << 52);
}

INLINE vfloat_wide
power_of_two_wide(vfloat_wide n) /* n integral in [-190, 0] */
{
    vfloat_wide k = n + SHIFTER_FLOAT, shifter = (vfloat_wide){0} + SHIFTER_FLOAT;
    return (vfloat_wide)(((vint_wide)k - (vint_wide)shifter + (127 + 64)) << 23);
}

INLINE vdouble
exp_nonpositive(vdouble s)
{
    vdouble floor = (vdouble){0} - 746.0; /* exp below it rounds to 0 */
    s = select_lanes(lanes_lt(s, floor), floor, s);
    vdouble n = (s * 0x1.71547652b82fep0 + SHIFTER) - SHIFTER;
    vdouble hi = s - n * 0x1.62e42fee00000p-1, lo = n * 0x1.a39ef35793c76p-33;
    vdouble r = hi - lo, q = (vdouble){0} + 0x1.af631d0059becp-26;
    q = q * r + 0x1.28b4057f44145p-22;
    q = q * r + 0x1.71ddf5749d126p-19;
    q = q * r + 0x1.a01991ac8730ap-16;
    q = q * r + 0x1.a01a01b14378fp-13;
    q = q * r + 0x1.6c16c187fbe02p-10;
    q = q * r + 0x1.111111110f225p-7;
    q = q * r + 0x1.555555554f0cfp-5;
    q = q * r + 0x1.555555555555ap-3;
    q = q * r + 0x1.0000000000011p-1;
    q = 1.0 + (r + (r * r) * q);
    return q * power_of_two(n) * 0x1p-64;
}

INLINE vfloat_wide
exp_nonpositive_wide(vfloat_wide s)
{
    vfloat_wide floor = (vfloat_wide){0} - 104.0f; /* exp below it rounds to 0 */
    s = select_wide(wide_lt(s, floor), floor, s);
    vfloat_wide n = (s * 0x1.715476p0f + SHIFTER_FLOAT) - SHIFTER_FLOAT;
    vfloat_wide r = (s - n * 0x1.62e4p-1f) - n * 0x1.7f7d1cp-20f;
    vfloat_wide q = (vfloat_wide){0} + 0x1.6d7532p-10f;
    q = q * r + 0x1.126fa6p-7f;
    q = q * r + 0x1.5554acp-5f;
    q = q * r + 0x1.555404p-3f;
    q = q * r + 0.5f;
    q = 1.0f + (r + (r * r) * q);
    return q * power_of_two_wide(n) * 0x1p-64f;
}

/* e / (1 + e)^2 with e = exp(-|x|) <= 1, clamped at its maximum 1/4: NaN
 * stays NaN, and the clamp's compare is false for it. The square is formed
 * from 1 + e carried exactly, d + d_low (Fast2Sum: 1 >= e), as
 * d·(d + 2·d_low), the formula's form (_formulas.sigmoid_derivative): the
 * rounding of d is not doubled by squaring, which kept float32 results past
 * the contract. (Carrying d·d's own rounding too, with a fused
 * multiply-add, measured no more accurate and slower.) */
INLINE vdouble
sigmoid_derivative_lanes(vdouble v)
{
    vdouble e = exp_nonpositive(-(vdouble)((vlong)v & ((vlong){0} + 0x7fffffffffffffffLL)));
    vdouble d = 1.0 + e, d_low = (1.0 - d) + e;
    vdouble r = e / (d * (d + 2.0 * d_low)), quarter = (vdouble){0} + 0.25;
    return select_lanes(lanes_gt(r, quarter), quarter, r);
}

INLINE vfloat_wide
sigmoid_derivative_wide(vfloat_wide v)
{
    vfloat_wide e = exp_nonpositive_wide(-(vfloat_wide)((vint_wide)v & 0x7fffffff));
    vfloat_wide d = 1.0f + e, d_low = (1.0f - d) + e;
    vfloat_wide r = e / (d * (d + 2.0f * d_low)), quarter = (vfloat_wide){0} + 0.25f;
    return select_wide(wide_gt(r, quarter), quarter, r);
}

/* 1 / (1 + e) for x >= 0 and e / (1 + e) below, e = exp(-|x|) <= 1: nothing
 * overflows, and both tails keep full relative accuracy; NaN stays NaN. */
INLINE vdouble
sigmoid_lanes(vdouble v)
{
    vdouble e = exp_nonpositive(-(vdouble)((vlong)v & ((vlong){0} + 0x7fffffffffffffffLL)));
    return select_lanes(lanes_ge(v, (vdouble){0}), (vdouble){0} + 1.0, e) / (1.0 + e);
}

INLINE vfloat_wide
sigmoid_wide(vfloat_wide v)
{
    vfloat_wide e = exp_nonpositive_wide(-(vfloat_wide)((vint_wide)v & 0x7fffffff));
    return select_wide(wide_ge(v, (vfloat_wide){0}), (vfloat_wide){0} + 1.0f, e) / (1.0f + e);
}

/* log(2^k·f) = k·log 2 + log f from f − 1 = f1 (exact) and k, plus a
 * correction `extra` (small beside log f: the rounding error of what was
 * reduced, over it), by fdlibm's reduction: with s = f1/(f1 + 2) and h =
 * f1²/2, log f = f1 − (h − s·(h + R)), R the series of 2·atanh(s)/s − 2 in s²
 * to its `terms`-th term (|s| <= 0.2: twelve terms reach 1e-18, eight 1e-12,
 * of log f; the rounding of f1 + 2 reaches only the small terms), log 2 in
 * two parts, the first exact times k. */
INLINE vdouble
log_reduced_series(vdouble k, vdouble f1, vdouble extra, int terms)
{
    vdouble s = f1 / (2.0 + f1), z = s * s, series = (vdouble){0};
    for (int j = terms; j >= 1; j--) {
        series = series * z + 2.0 / (2 * j + 1);
    }
    vdouble r = z * series, h = 0.5 * f1 * f1;
    return k * 0x1.62e42feep-1 - ((h - (s * (h + r) + (k * 0x1.a39ef35793c76p-33 + extra))) - f1);
}

INLINE vdouble
log_reduced_lanes(vdouble k, vdouble f1, vdouble extra)
{
    return log_reduced_series(k, f1, extra, 12);
}

/* 1 + e = 2^k·f for e in [0, 1], with f − 1 exact and no division: k = 0
 * and f − 1 = e below 1/2, else k = 1 and f − 1 = (e − 1)/2 (Sterbenz). */
INLINE void
unit_reduction(vdouble e, vdouble *k, vdouble *f1)
{
    vdouble zero = {0};
    vlong above = lanes_ge(e, zero + 0.5);
    *k = select_lanes(above, zero + 1.0, zero);
    *f1 = select_lanes(above, 0.5 * (e - 1.0), e);
}

/* log(1 + e) for e in [0, 1] (NaN stays NaN), within an ulp. */
INLINE vdouble
log1p_unit_lanes(vdouble e)
{
    vdouble k, f1;
    unit_reduction(e, &k, &f1);
    return log_reduced_lanes(k, f1, (vdouble){0});
}

/* u = 2^k·f for u > 0, finite (subnormal too; other lanes: meaningless
 * values): f in [√2/2, √2) read off u's bits (subnormals scaled up first),
 * f - 1 exact (Sterbenz). */
INLINE void
log_reduction_exact(vdouble u, vdouble *k, vdouble *f1)
{
    vdouble zero = {0};
    vlong tiny = lanes_lt(u, zero + DBL_MIN);
    vdouble normal = select_lanes(tiny, u * 0x1p54, u);
    vlong bits = (vlong)normal, mantissa = (vlong){0} + 0x000fffffffffffffLL;
    vdouble f = (vdouble)((bits & mantissa) | 0x3ff0000000000000LL);
    vlong halve = lanes_ge(f, zero + 0x1.6a09e667f3bcdp+0);
    *f1 = select_lanes(halve, 0.5 * f, f) - 1.0;
    *k = __builtin_convertvector(((bits >> 52) & 0x7ff) - 1023, vdouble) +
         select_lanes(halve, zero + 1.0, zero) - select_lanes(tiny, zero + 54.0, zero);
}

/* u + c = 2^k·f·(1 + c/u), c being u's rounding error (|c| <= ulp(u)/2):
 * log_reduction_exact's k and f - 1, and c/u the correction log_reduced_lanes
 * takes. */
INLINE void
log_reduction(vdouble u, vdouble c, vdouble *k, vdouble *f1, vdouble *extra)
{
    log_reduction_exact(u, k, f1);
    *extra = c / u;
}

/* log(u + c), as log_reduction takes them, within an ulp: with |s| below
 * 0.1716 there, fdlibm's minimax polynomial for R (seven terms, in s² and s⁴)
 * in place of the series. */
INLINE vdouble
log_corrected_lanes(vdouble u, vdouble c)
{
    vdouble k, f1, extra;
    log_reduction(u, c, &k, &f1, &extra);
    vdouble s = f1 / (2.0 + f1), z = s * s, w = z * z;
    vdouble odd = z * (6.666666666666735130e-01 +
                       w * (2.857142874366239149e-01 +
                            w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    vdouble even = w * (3.999999999940941908e-01 +
                        w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    vdouble r = odd + even, h = 0.5 * f1 * f1;
    return k * 0x1.62e42feep-1 - ((h - (s * (h + r) + (k * 0x1.a39ef35793c76p-33 + extra))) - f1);
}

/* log(1 + r) for finite r >= 0 (other lanes: meaningless values), within an
 * ulp: the unit reduction below 1; from 1 on, that of u = 1 + r rounded with
 * its error r - (u - 1) (exact there). */
INLINE vdouble
log1p_lanes(vdouble r)
{
    vdouble zero = {0}, u = 1.0 + r, k, f1, extra, unit_k, unit_f1;
    log_reduction(u, r - (u - 1.0), &k, &f1, &extra);
    unit_reduction(r, &unit_k, &unit_f1);
    vlong unit = lanes_lt(r, zero + 1.0);
    return log_reduced_lanes(select_lanes(unit, unit_k, k), select_lanes(unit, unit_f1, f1),
                             select_lanes(unit, zero, extra));
}

/* log1p_lanes for a result rounded to float32: from 1 on, u's rounding error
 * left out (below 2^-53 of the result there) and with it a division; eight
 * terms of the series (1e-12 of the result, where a float's rounding is
 * 6e-8). */
INLINE vdouble
log1p_narrow_lanes(vdouble r)
{
    vdouble zero = {0}, k, f1, unit_k, unit_f1;
    log_reduction_exact(1.0 + r, &k, &f1);
    unit_reduction(r, &unit_k, &unit_f1);
    vlong unit = lanes_lt(r, zero + 1.0);
    return log_reduced_series(select_lanes(unit, unit_k, k), select_lanes(unit, unit_f1, f1),
                              zero, 8);
}

/* log_reduced_lanes in float lanes, for float32 results: |s| below 0.2
 * there, and six terms of the series reach 1e-9; log 2 in two parts, the
 * first exact times any k a float's exponent gives. */
INLINE vfloat_wide
log_reduced_wide(vfloat_wide k, vfloat_wide f1)
{
    vfloat_wide s = f1 / (2.0f + f1), z = s * s;
    vfloat_wide series = (vfloat_wide){0} + 2.0f / 13.0f;
    series = series * z + 2.0f / 11.0f;
    series = series * z + 2.0f / 9.0f;
    series = series * z + 2.0f / 7.0f;
    series = series * z + 2.0f / 5.0f;
    series = series * z + 2.0f / 3.0f;
    vfloat_wide r = z * series, h = 0.5f * f1 * f1;
    return k * 0x1.62e4p-1f - ((h - (s * (h + r) + k * 0x1.7f7d1cp-20f)) - f1);
}

/* log1p_unit_lanes in float lanes. */
INLINE vfloat_wide
log1p_unit_wide(vfloat_wide e)
{
    vfloat_wide zero = {0};
    vint_wide above = wide_ge(e, zero + 0.5f);
    return log_reduced_wide(select_wide(above, zero + 1.0f, zero),
                            select_wide(above, 0.5f * (e - 1.0f), e));
}

/* u = 2^k·f for u > 0, finite (subnormal too), in float lanes: f in
 * [√2/2, √2) read off u's bits (subnormals scaled up first), f − 1 exact
 * (Sterbenz); log_reduction's steps on a float. */
INLINE void
log_reduction_wide(vfloat_wide u, vfloat_wide *k, vfloat_wide *f1)
{
    vfloat_wide zero = {0};
    vint_wide tiny = wide_lt(u, zero + FLT_MIN);
    vint_wide bits = (vint_wide)select_wide(tiny, u * 0x1p24f, u);
    vfloat_wide f = (vfloat_wide)((bits & 0x007fffff) | 0x3f800000);
    vint_wide halve = wide_ge(f, zero + 0x1.6a09e6p+0f);
    *k = __builtin_convertvector(((bits >> 23) & 0xff) - 127, vfloat_wide) +
         select_wide(halve, zero + 1.0f, zero) - select_wide(tiny, zero + 24.0f, zero);
    *f1 = select_wide(halve, 0.5f * f, f) - 1.0f;
}

/* softplus(x) = max(x, 0) + log1p(exp(−|x|)): two terms of one sign, as the
 * formula (_log_space.softplus); the log-sigmoid is −softplus(−x). float32
 * in float lanes, twice as many. */
INLINE vdouble
softplus_lanes(vdouble v)
{
    vdouble zero = {0};
    vdouble e = exp_nonpositive(-(vdouble)((vlong)v & ((vlong){0} + 0x7fffffffffffffffLL)));
    return select_lanes(lanes_gt(v, zero), v, zero) + log1p_unit_lanes(e);
}

INLINE vdouble
log_sigmoid_lanes(vdouble v)
{
    return -softplus_lanes(-v);
}

/* (1 − y)·max(z, 0) + y·max(−z, 0) + log1p(exp(−|z|)), as the formula
 * (_log_space.binary_cross_entropy_with_logits): terms of one sign for y in
 * [0, 1]. */
INLINE vdouble
logistic_lanes(vdouble z, vdouble y)
{
    vdouble zero = {0};
    vdouble e = exp_nonpositive(-(vdouble)((vlong)z & ((vlong){0} + 0x7fffffffffffffffLL)));
    return select_lanes(lanes_ge(z, zero), (1.0 - y) * z, -(y * z)) + log1p_unit_lanes(e);
}

/* The binary cross-entropy's special values, around its term from the
 * logarithms of p and 1 − p (each taken of 1 where it is 0), as the formula
 * (_log_space.binary_cross_entropy): 0·log 0 is 0 (the term's own +0); a
 * label's log 0, a certain wrong label, is +inf; p outside [0, 1] (or NaN)
 * gives NaN. Each test is one comparison: GCC (12) compiles two combined
 * with & or | one lane at a time. So p·(1 − p) >= 0 holds just for p in
 * [0, 1], and the wrong label's weight y (p = 0) or 1 − y (p = 1) is positive
 * just where its logarithm is −inf. */
#define BINARY_CROSS_ENTROPY_SPECIALS(NAME, VT, SELECT, GT, LT, GE)                        \
    INLINE VT NAME(VT p, VT y, VT term)                                                    \
    {                                                                                      \
        VT zero = {0}, one = zero + 1;                                                     \
        VT wrong = SELECT(GT(p, zero), zero, y) + SELECT(LT(p, one), zero, one - y);       \
        term = SELECT(GT(wrong, zero), zero + INFINITY, term);                             \
        return SELECT(GE(p * (one - p), zero), term, zero + NAN);                          \
    }
BINARY_CROSS_ENTROPY_SPECIALS(binary_cross_entropy_specials, vdouble, select_lanes, lanes_gt,
                              lanes_lt, lanes_ge)
BINARY_CROSS_ENTROPY_SPECIALS(binary_cross_entropy_specials_wide, vfloat_wide, select_wide,
                              wide_gt, wide_lt, wide_ge)

/* −(y·log p + (1 − y)·log(1 − p)), terms of one sign for y in [0, 1]. */
INLINE vdouble
binary_cross_entropy_term(vdouble y, vdouble log_p, vdouble log_q)
{
    return (vdouble){0} - (y * log_p + (1.0 - y) * log_q);
}

/* The binary cross-entropy: 1 − p = q + e exactly (Fast2Sum), and
 * log(1 − p) = log(q + e). */
INLINE vdouble
binary_cross_entropy_lanes(vdouble p, vdouble y)
{
    vdouble zero = {0}, one = zero + 1.0, q = 1.0 - p;
    vlong below_one = lanes_lt(p, one);
    vdouble log_p = log_corrected_lanes(select_lanes(lanes_gt(p, zero), p, one), zero);
    vdouble log_q = log_corrected_lanes(select_lanes(below_one, q, one),
                                        select_lanes(below_one, -p - (q - 1.0), zero));
    return binary_cross_entropy_specials(p, y, binary_cross_entropy_term(y, log_p, log_q));
}

INLINE void doubled(vfloat_wide e, vdouble halves[2]);
INLINE vfloat_wide narrowed(const vdouble halves[2]);

/* The binary cross-entropy of float32 probabilities: both logarithms in float
 * lanes (twice the lanes, each within an ulp), the term in double (products and
 * sum exact or nearly) rounded once, its special values in float lanes.
 * log(1 − p) is reduced from p, exactly, so that it needs no correction: 1 − p
 * where that is exact (p >= 1/2), else f − 1 is −p (k = 0) or 1 − 2p (k = −1,
 * Sterbenz), with k read off 1 − p rounded. */
INLINE vfloat_wide
binary_cross_entropy_wide(vfloat_wide p, vfloat_wide y)
{
    vfloat_wide zero = {0}, one = zero + 1.0f;
    vfloat_wide k_p, f1_p, k_q, f1_q;
    log_reduction_wide(select_wide(wide_gt(p, zero), p, one), &k_p, &f1_p);
    vint_wide below_one = wide_lt(p, one);
    log_reduction_wide(select_wide(below_one, 1.0f - p, one), &k_q, &f1_q);
    vfloat_wide below_one_half = select_wide(wide_lt(k_q, zero), 1.0f - 2.0f * p, -p);
    f1_q = select_wide(wide_lt(p, zero + 0.5f), below_one_half, f1_q);
    vfloat_wide log_p = log_reduced_wide(k_p, f1_p), log_q = log_reduced_wide(k_q, f1_q);
    vdouble ys[2], log_ps[2], log_qs[2], terms[2];
    doubled(y, ys);
    doubled(log_p, log_ps);
    doubled(log_q, log_qs);
    for (int h = 0; h < 2; h++) {
        terms[h] = binary_cross_entropy_term(ys[h], log_ps[h], log_qs[h]);
    }
    return binary_cross_entropy_specials_wide(p, y, narrowed(terms));
}

/* The logistic loss in float lanes (float32: twice the lanes). */
INLINE vfloat_wide
logistic_wide(vfloat_wide z, vfloat_wide y)
{
    vfloat_wide zero = {0};
    vfloat_wide e = exp_nonpositive_wide(-(vfloat_wide)((vint_wide)z & 0x7fffffff));
    return select_wide(wide_ge(z, zero), (1.0f - y) * z, -(y * z)) + log1p_unit_wide(e);
}

INLINE vdouble widened(vfloat_wide e);

/* A loss's float32 terms (TERM, in float lanes) of n predictions a and labels b into
 * out, or (out NULL) their sum in double; the last few padded with zeros into a
 * vector, so that every position takes the same arithmetic. */
#define FLOAT_TERMS(NAME, TERM)                                                            \
    INLINE double NAME(const float *a, const float *b, float *out, Py_ssize_t n)          \
    {                                                                                      \
        vdouble acc = {0};                                                                 \
        vfloat_wide u, v, r;                                                               \
        Py_ssize_t k = 0;                                                                  \
        for (; k + WIDE <= n; k += WIDE) {                                                 \
            memcpy(&u, a + k, sizeof u);                                                   \
            memcpy(&v, b + k, sizeof v);                                                   \
            r = TERM(u, v);                                                                \
            if (out != NULL) {                                                             \
                memcpy(out + k, &r, sizeof r);                                             \
            }                                                                              \
            else {                                                                         \
                acc += widened(r);                                                         \
            }                                                                              \
        }                                                                                  \
        double total = lanes_total(acc);                                                   \
        if (k < n) {                                                                       \
            float part_a[WIDE] = {0}, part_b[WIDE] = {0}, part[WIDE];                      \
            memcpy(part_a, a + k, (n - k) * sizeof(float));                                \
            memcpy(part_b, b + k, (n - k) * sizeof(float));                                \
            memcpy(&u, part_a, sizeof u);                                                  \
            memcpy(&v, part_b, sizeof v);                                                  \
            r = TERM(u, v);                                                                \
            memcpy(part, &r, sizeof r);                                                    \
            for (Py_ssize_t j = 0; j < n - k; j++) {                                       \
                if (out != NULL) {                                                         \
                    out[k + j] = part[j];                                                  \
                }                                                                          \
                else {                                                                     \
                    total += (double)part[j];                                              \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
        return total;                                                                      \
    }
FLOAT_TERMS(logistic_floats, logistic_wide)
FLOAT_TERMS(probabilities_floats, binary_cross_entropy_wide)

INLINE vfloat_wide
softplus_wide(vfloat_wide v)
{
    vfloat_wide zero = {0};
    vfloat_wide e = exp_nonpositive_wide(-(vfloat_wide)((vint_wide)v & 0x7fffffff));
    return select_wide(wide_gt(v, zero), v, zero) + log1p_unit_wide(e);
}

INLINE vfloat_wide
log_sigmoid_wide(vfloat_wide v)
{
    return -softplus_wide(-v);
}

typedef struct {
    Buffer *b; /* x, out */
} ElementsJob;

/* f over x's elements from i to stop, a vector at a time; the last few in a
 * vector padded with zeros. */
#define ELEMENTWISE(NAME, T, VT, WIDTH, F)                                                 \
    INLINE void NAME(const T *x, T *out, Py_ssize_t i, Py_ssize_t stop)                   \
    {                                                                                      \
        VT v;                                                                              \
        for (; i + WIDTH <= stop; i += WIDTH) {                                            \
            memcpy(&v, x + i, sizeof v);                                                   \
            v = F(v);                                                                      \
            memcpy(out + i, &v, sizeof v);                                                 \
        }                                                                                  \
        if (i < stop) {                                                                    \
            T part[WIDTH] = {0};                                                           \
            for (int j = 0; i + j < stop; j++) {                                           \
                part[j] = x[i + j];                                                        \
            }                                                                              \
            memcpy(&v, part, sizeof v);                                                    \
            v = F(v);                                                                      \
            memcpy(part, &v, sizeof v);                                                    \
            for (int j = 0; i + j < stop; j++) {                                           \
                out[i + j] = part[j];                                                      \
            }                                                                              \
        }                                                                                  \
    }
ELEMENTWISE(sigmoid_derivative_doubles, double, vdouble, LANES, sigmoid_derivative_lanes)
ELEMENTWISE(sigmoid_derivative_floats, float, vfloat_wide, WIDE, sigmoid_derivative_wide)
ELEMENTWISE(sigmoid_doubles, double, vdouble, LANES, sigmoid_lanes)
ELEMENTWISE(sigmoid_floats, float, vfloat_wide, WIDE, sigmoid_wide)
ELEMENTWISE(softplus_doubles, double, vdouble, LANES, softplus_lanes)
ELEMENTWISE(softplus_floats, float, vfloat_wide, WIDE, softplus_wide)
ELEMENTWISE(log_sigmoid_doubles, double, vdouble, LANES, log_sigmoid_lanes)
ELEMENTWISE(log_sigmoid_floats, float, vfloat_wide, WIDE, log_sigmoid_wide)

/* An elementwise primitive's range function and its entry point,
 * NAME(x, out, threads=1). */
#define ELEMENTWISE_ENTRY(NAME)                                                            \
    VECTOR_CLONES_FUSED static void NAME##_range(void *ctx, Py_ssize_t begin, Py_ssize_t end) \
    {                                                                                      \
        ElementsJob *job = ctx;                                                            \
        const Buffer *x = &job->b[0], *out = &job->b[1];                                   \
        Py_ssize_t i = begin * STRETCH, stop = end * STRETCH < x->n ? end * STRETCH : x->n; \
        double scratch[STRETCH];                                                           \
        for (; i < stop; i += STRETCH) {                                                   \
            Py_ssize_t n = stop - i < STRETCH ? stop - i : STRETCH;                        \
            const void *from = piece(x, i, n, scratch).view.buf;                           \
            if (x->kind == 'd') {                                                          \
                NAME##_doubles(from, (double *)out->view.buf + i, 0, n);                   \
            }                                                                              \
            else {                                                                         \
                NAME##_floats(from, (float *)out->view.buf + i, 0, n);                     \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
                                                                                           \
    static PyObject *NAME(PyObject *self, PyObject *const *args, Py_ssize_t nargs)         \
    {                                                                                      \
        Buffer b[2];                                                                       \
        ElementsJob job = {b};                                                             \
        if (nargs != 2 && nargs != 3) {                                                    \
            PyErr_SetString(PyExc_TypeError, "expected (x, out[, threads])");              \
            return NULL;                                                                   \
        }                                                                                  \
        int threads = nargs == 3 ? (int)PyLong_AsLong(args[2]) : 1;                        \
        if (PyErr_Occurred()) {                                                            \
            return NULL;                                                                   \
        }                                                                                  \
        if (!acquire_all(args, b, 2, 0x2, 0x1, 2)) {                                       \
            Py_RETURN_FALSE;                                                               \
        }                                                                                  \
        run(&NAME##_range, &job, (b[0].n + STRETCH - 1) / STRETCH, b[0].n, threads, &b[1]); \
        release_all(b, 2);                                                                 \
        Py_RETURN_TRUE;                                                                    \
    }
ELEMENTWISE_ENTRY(sigmoid)
ELEMENTWISE_ENTRY(sigmoid_derivative)
ELEMENTWISE_ENTRY(softplus)
ELEMENTWISE_ENTRY(log_sigmoid)

/* ---- rows -------------------------------------------------------------- */

/* Softmax of each row, fused: the row's maximum m; exp(x - m) into out,
 * summed on the way; then each over the sum.
 *
 * The rounding error of x - m is carried into exp (TwoSum): without it a
 * small result's relative error grows like |x - m| ulps. float64 sums in
 * eight compensated lanes and divides. float32 is computed in float lanes,
 * twice as many, and sums in double (positive terms: relative error under
 * 2^-40 for any row that fits in memory); it multiplies by the reciprocal
 * rounded to float: within three ulps in all. An entry of -inf, or a
 * difference that overflowed to -inf, has exp 0. Rows with NaN or +inf, or
 * of -inf alone, take their limits (softmax_limit). */
typedef struct {
    Buffer *b; /* x, out */
    Py_ssize_t cols;
    int reduce; /* out holds one result per row (logsumexp), not a row's */
} RowsJob;

/* The exact rounding error of d = v - m (Knuth's TwoSum), in each lane. */
#define DIFFERENCE_ERROR(NAME, VT)                                                         \
    INLINE VT NAME(VT v, VT m, VT d)                                                       \
    {                                                                                      \
        VT back = d - v;                                                                   \
        return (v - (d - back)) + (-m - back);                                             \
    }
DIFFERENCE_ERROR(difference_error_lanes, vdouble)
DIFFERENCE_ERROR(difference_error_wide, vfloat_wide)

INLINE vdouble
softmax_exp_lanes(vdouble v, vdouble m)
{
    vdouble d = v - m, e = exp_nonpositive(d), floor = (vdouble){0} - 746.0;
    /* Below the floor (-inf too, whose error term is NaN) exp is 0; NaN stays NaN. */
    return select_lanes(lanes_lt(d, floor), (vdouble){0}, e + e * difference_error_lanes(v, m, d));
}

INLINE vfloat_wide
softmax_exp_wide(vfloat_wide v, vfloat_wide m)
{
    vfloat_wide d = v - m, e = exp_nonpositive_wide(d), floor = (vfloat_wide){0} - 104.0f;
    return select_wide(wide_lt(d, floor), (vfloat_wide){0}, e + e * difference_error_wide(v, m, d));
}

/* Sums in compensated lanes (TwoSum in each). */
INLINE void
add_compensated(vdouble *acc, vdouble *comp, vdouble e)
{
    vdouble t = *acc + e, back = t - *acc;
    *comp += (*acc - (t - back)) + (e - back);
    *acc = t;
}

/* The total of compensated lanes: the lanes added with TwoSum (no branch to
 * mispredict, as Neumaier's has), their errors and the lanes' own
 * compensations added plainly (each far below the total's last bit). */
INLINE double
compensated_total(vdouble acc, vdouble comp)
{
    double total = acc[0], error = 0.0;
    for (int lane = 1; lane < LANES; lane++) {
        double t = total + acc[lane], back = t - total;
        error += (total - (t - back)) + (acc[lane] - back);
        total = t;
    }
    return total + (error + lanes_total(comp));
}

/* The lanes of a vector from `first` on: where a row's last vector overlaps
 * the one before (rows that are not a whole number of vectors), only those
 * lanes are new. */
INLINE vlong
lanes_from(Py_ssize_t first)
{
    vlong index = {0, 1, 2, 3, 4, 5, 6, 7};
    return index_ge_lanes(index, (vlong){0} + first);
}

INLINE vint_wide
wide_lanes_from(Py_ssize_t first)
{
    vint_wide index = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return index_ge_wide(index, (vint_wide){0} + (int)first);
}

/* The largest lane (NaN never wins a comparison: the caller checks the sum). */
#define LARGEST(NAME, T, VT, WIDTH)                                                        \
    INLINE T NAME(VT v)                                                                    \
    {                                                                                      \
        T m = v[0];                                                                        \
        for (int lane = 1; lane < WIDTH; lane++) {                                         \
            m = v[lane] > m ? v[lane] : m;                                                 \
        }                                                                                  \
        return m;                                                                          \
    }
LARGEST(largest_lanes, double, vdouble, LANES)
LARGEST(largest_wide, float, vfloat_wide, WIDE)

/* The largest entry of a row of at least one vector: whole vectors, then the
 * last one, which may overlap the one before. */
#define ROW_MAX(NAME, T, VT, WIDTH, SELECT, GREATER, LARGEST_LANE)                         \
    INLINE T NAME(const T *x, Py_ssize_t cols)                                             \
    {                                                                                      \
        VT top = (VT){0} - INFINITY, other = top, v, w;                                    \
        Py_ssize_t k = 0;                                                                  \
        /* Two chains of comparisons: each waits for its last, and the row's  \
         * exps wait for the maximum. */                                                   \
        for (; k <= cols - 2 * WIDTH; k += 2 * WIDTH) {                                    \
            memcpy(&v, x + k, sizeof v);                                                   \
            memcpy(&w, x + k + WIDTH, sizeof w);                                           \
            top = SELECT(GREATER(v, top), v, top);                                         \
            other = SELECT(GREATER(w, other), w, other);                                   \
        }                                                                                  \
        if (k <= cols - WIDTH) {                                                           \
            memcpy(&v, x + k, sizeof v);                                                   \
            top = SELECT(GREATER(v, top), v, top);                                         \
        }                                                                                  \
        memcpy(&w, x + cols - WIDTH, sizeof w);                                            \
        other = SELECT(GREATER(w, other), w, other);                                       \
        return LARGEST_LANE(SELECT(GREATER(other, top), other, top));                      \
    }
ROW_MAX(row_max_double, double, vdouble, LANES, select_lanes, lanes_gt, largest_lanes)
ROW_MAX(row_max_float, float, vfloat_wide, WIDE, select_wide, wide_gt, largest_wide)

/* The limit a row takes where its maximum is not finite, as the generic
 * formula defines it: a NaN anywhere makes the row NaN; otherwise the entries
 * equal to the maximum (+inf, or -inf in a row of -inf alone) share the mass
 * and the rest get 0. Exact, so every layout and kernel gives these bits.
 * Rows `stride` apart in memory: the rows' kernels pass 1, the columns' their
 * width. */
#define SOFTMAX_LIMIT(NAME, T)                                                             \
    static void NAME(const T *x, T *out, Py_ssize_t cols, Py_ssize_t stride)               \
    {                                                                                      \
        T m = -INFINITY;                                                                   \
        int nan = 0;                                                                       \
        for (Py_ssize_t j = 0; j < cols; j++) {                                            \
            T v = x[j * stride];                                                           \
            nan |= v != v;                                                                 \
            m = v > m ? v : m;                                                             \
        }                                                                                  \
        Py_ssize_t count = 0;                                                              \
        for (Py_ssize_t j = 0; j < cols; j++) {                                            \
            count += x[j * stride] == m;                                                   \
        }                                                                                  \
        T share = nan ? (T)NAN : (T)(1.0 / (double)count), rest = nan ? (T)NAN : (T)0;     \
        for (Py_ssize_t j = 0; j < cols; j++) {                                            \
            out[j * stride] = x[j * stride] == m ? share : rest;                           \
        }                                                                                  \
    }
SOFTMAX_LIMIT(softmax_limit_double, double)
SOFTMAX_LIMIT(softmax_limit_float, float)

/* Softmax of a row of at least one vector (the caller pads shorter ones):
 * its maximum; exp(x - m) into out, summed; each over the sum. The last
 * vector of a row that is not a whole number of them is the row's last
 * elements, overlapping the vector before: their exp is the same there, and
 * the overlap is left out of the sum and not scaled twice. A row that fails
 * (the maximum's exp(0) makes a finite row's sum at least 1; NaN, +inf and
 * a row of -inf alone all fail that) takes its limit. */
INLINE void
softmax_row_double(const double *x, double *out, Py_ssize_t cols, int reduce)
{
    (void)reduce; /* the rows' drivers' signature: softmax has no reduced form */
    vdouble v, e;
    Py_ssize_t last = cols - LANES, k;
    double m = row_max_double(x, cols);
    if (!isfinite(m)) {
        softmax_limit_double(x, out, cols, 1);
        return;
    }
    vdouble mv = (vdouble){0} + m, acc = {0}, comp = {0};
    for (k = 0; k <= last; k += LANES) {
        memcpy(&v, x + k, sizeof v);
        e = softmax_exp_lanes(v, mv);
        memcpy(out + k, &e, sizeof e);
        add_compensated(&acc, &comp, e);
    }
    vlong fresh = lanes_from(k - last);
    memcpy(&v, x + last, sizeof v);
    e = softmax_exp_lanes(v, mv);
    memcpy(out + last, &e, sizeof e);
    add_compensated(&acc, &comp, select_lanes(fresh, e, (vdouble){0}));
    double total = compensated_total(acc, comp);
    if (!(total >= 1.0)) {
        softmax_limit_double(x, out, cols, 1);
        return;
    }
    for (k = 0; k <= last; k += LANES) {
        memcpy(&v, out + k, sizeof v);
        v /= total;
        memcpy(out + k, &v, sizeof v);
    }
    memcpy(&v, out + last, sizeof v);
    v = select_lanes(fresh, v / total, v);
    memcpy(out + last, &v, sizeof v);
}

/* Sixteen floats in two vectors of double lanes, and back. */
INLINE void
doubled(vfloat_wide e, vdouble halves[2])
{
    vdouble_wide w = __builtin_convertvector(e, vdouble_wide);
    memcpy(halves, &w, sizeof w);
}

INLINE vfloat_wide
narrowed(const vdouble halves[2])
{
    vfloat lo = __builtin_convertvector(halves[0], vfloat);
    vfloat hi = __builtin_convertvector(halves[1], vfloat);
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/* The sum of sixteen floats' halves, in double lanes. */
INLINE vdouble
widened(vfloat_wide e)
{
    vdouble halves[2];
    doubled(e, halves);
    return halves[0] + halves[1];
}

INLINE void
softmax_row_float(const float *x, float *out, Py_ssize_t cols, int reduce)
{
    (void)reduce;
    vfloat_wide v, e;
    Py_ssize_t last = cols - WIDE, k;
    float m = row_max_float(x, cols);
    if (!isfinite(m)) {
        softmax_limit_float(x, out, cols, 1);
        return;
    }
    vfloat_wide mv = (vfloat_wide){0} + m;
    vdouble acc = {0};
    for (k = 0; k <= last; k += WIDE) {
        memcpy(&v, x + k, sizeof v);
        e = softmax_exp_wide(v, mv);
        memcpy(out + k, &e, sizeof e);
        acc += widened(e);
    }
    vint_wide fresh = wide_lanes_from(k - last);
    memcpy(&v, x + last, sizeof v);
    e = softmax_exp_wide(v, mv);
    memcpy(out + last, &e, sizeof e);
    acc += widened(select_wide(fresh, e, (vfloat_wide){0}));
    double total = lanes_total(acc);
    if (!(total >= 1.0)) {
        softmax_limit_float(x, out, cols, 1);
        return;
    }
    /* total is at least 1 and at most the row's length: its reciprocal is a
     * normal float. */
    float factor = (float)(1.0 / total);
    for (k = 0; k <= last; k += WIDE) {
        memcpy(&v, out + k, sizeof v);
        v *= factor;
        memcpy(out + k, &v, sizeof v);
    }
    memcpy(&v, out + last, sizeof v);
    v = select_wide(fresh, v * factor, v);
    memcpy(out + last, &v, sizeof v);
}

/* Softmax over the middle axis of a C-contiguous (blocks, length, width)
 * array: the rows of the softmax are the columns of each block, one to a
 * lane, so the vectors run along memory where the rows' kernel would need a
 * copy with the axis moved last. Each lane takes the rows' arithmetic in its
 * order — for axes shorter than a vector the short rows' (the maximum, the
 * exps, their sum: Neumaier's in double lanes, both of its branches computed
 * and one selected; a plain double sum of floats — the scaling), for longer
 * ones the rows' kernel's (softmax_columns_long_*, below) — so the results
 * are the bits the rows' kernel gives on the axis moved last
 * (tests/test_layouts.py). A chunk is one block's lanes of columns; the last
 * of a block, where the width is not a whole number of vectors, is computed
 * on a padded copy. */
typedef struct {
    Buffer *b; /* x, out */
    Py_ssize_t length, width, chunks;
    int reduce; /* out holds one result per column (logsumexp) */
} ColumnsJob;

INLINE vdouble
abs_lanes(vdouble v)
{
    return (vdouble)((vlong)v & ((vlong){0} + 0x7fffffffffffffffLL));
}

/* Neumaier's compensated step in each lane: the running error is carried, so a
 * sum of n terms is accurate to a couple of ulps instead of n/2. */
INLINE void
neumaier_lanes(vdouble *sum, vdouble *err, vdouble v)
{
    vdouble t = *sum + v;
    *err += select_lanes(lanes_ge(abs_lanes(*sum), abs_lanes(v)), (*sum - t) + v, (v - t) + *sum);
    *sum = t;
}

/* Whether any lane of the mask is set, without a branch per lane. */
INLINE int
any_lanes(vlong mask)
{
    long long any = 0;
    for (int lane = 0; lane < LANES; lane++) {
        any |= mask[lane];
    }
    return any != 0;
}

/* The lanes' maxima: axes of eight and more in four chains of comparisons (one
 * waits for its last comparison), shorter ones in one (where joining the
 * chains would cost more than it saves); the maximum is the same in any order. */
#define COLUMNS_MAX(NAME, T, VT, SELECT, GREATER)                                          \
    INLINE VT NAME(const T *x, Py_ssize_t length, Py_ssize_t stride)                       \
    {                                                                                      \
        VT m[4], v;                                                                        \
        for (int c = 0; c < 4; c++) {                                                      \
            m[c] = (VT){0} - INFINITY;                                                     \
        }                                                                                  \
        Py_ssize_t i = 0, chains = length < 8 ? 0 : length;                                \
        for (; i + 4 <= chains; i += 4) {                                                  \
            for (int c = 0; c < 4; c++) {                                                  \
                memcpy(&v, x + (i + c) * stride, sizeof v);                                \
                m[c] = SELECT(GREATER(v, m[c]), v, m[c]);                                  \
            }                                                                              \
        }                                                                                  \
        for (; i < length; i++) {                                                          \
            memcpy(&v, x + i * stride, sizeof v);                                          \
            m[0] = SELECT(GREATER(v, m[0]), v, m[0]);                                      \
        }                                                                                  \
        if (!chains) {                                                                     \
            return m[0];                                                                   \
        }                                                                                  \
        m[0] = SELECT(GREATER(m[1], m[0]), m[1], m[0]);                                    \
        m[2] = SELECT(GREATER(m[3], m[2]), m[3], m[2]);                                    \
        return SELECT(GREATER(m[2], m[0]), m[2], m[0]);                                    \
    }
COLUMNS_MAX(columns_max_lanes, double, vdouble, select_lanes, lanes_gt)
COLUMNS_MAX(columns_max_wide, float, vfloat_wide, select_wide, wide_gt)

/* The lanes of a softmax columns' chunk whose rows fail (a maximum that is not
 * finite, or a sum below 1: a NaN) take their limits, over the meaningless
 * values computed beside the others. */
INLINE void
softmax_columns_limits_double(const double *x, double *out, Py_ssize_t length, Py_ssize_t stride,
                              vdouble m, vdouble total)
{
    vlong fails = lanes_gt(abs_lanes(m), (vdouble){0} + DBL_MAX) | ~lanes_ge(total, (vdouble){0} + 1.0);
    if (any_lanes(fails)) {
        for (int lane = 0; lane < LANES; lane++) {
            if (fails[lane]) {
                softmax_limit_double(x + lane, out + lane, length, stride);
            }
        }
    }
}

INLINE void
softmax_columns_limits_float(const float *x, float *out, Py_ssize_t length, Py_ssize_t stride,
                             vfloat_wide m, const vdouble total[2])
{
    vint_wide infinite = wide_gt((vfloat_wide)((vint_wide)m & 0x7fffffff), (vfloat_wide){0} + FLT_MAX);
    vlong below = ~lanes_ge(total[0], (vdouble){0} + 1.0) | ~lanes_ge(total[1], (vdouble){0} + 1.0);
    if (any_lanes(below) || any_lanes((vlong)infinite)) {
        for (int lane = 0; lane < WIDE; lane++) {
            if (!isfinite(m[lane]) || !(total[lane / LANES][lane % LANES] >= 1.0)) {
                softmax_limit_float(x + lane, out + lane, length, stride);
            }
        }
    }
}

/* One chunk of double lanes: rows `stride` apart. A lane whose row holds
 * ±inf or NaN (its maximum not finite, or its sum below 1) computes
 * meaningless values beside the others, then takes its limit. */
INLINE void
softmax_columns_double(const double *x, double *out, Py_ssize_t length, Py_ssize_t stride,
                       int reduce)
{
    (void)reduce;
    vdouble m = columns_max_lanes(x, length, stride), v, e[LANES], sum = {0}, err = {0};
    for (Py_ssize_t i = 0; i < length; i++) {
        memcpy(&v, x + i * stride, sizeof v);
        e[i] = softmax_exp_lanes(v, m);
        neumaier_lanes(&sum, &err, e[i]);
    }
    vdouble total = sum + err;
    for (Py_ssize_t i = 0; i < length; i++) {
        v = e[i] / total;
        memcpy(out + i * stride, &v, sizeof v);
    }
    softmax_columns_limits_double(x, out, length, stride, m, total);
}

/* The same in float lanes, twice as many, summed in double (plainly: fewer
 * than sixteen floats leave a double sum no rounding worth carrying) and
 * scaled by the total's reciprocal in double, rounded once to float. */
INLINE void
softmax_columns_float(const float *x, float *out, Py_ssize_t length, Py_ssize_t stride,
                      int reduce)
{
    (void)reduce;
    vfloat_wide m = columns_max_wide(x, length, stride), v, e[WIDE];
    vdouble total[2] = {{0}, {0}};
    for (Py_ssize_t i = 0; i < length; i++) {
        memcpy(&v, x + i * stride, sizeof v);
        e[i] = softmax_exp_wide(v, m);
        vfloat half[2];
        memcpy(half, &e[i], sizeof half);
        for (int h = 0; h < 2; h++) {
            total[h] += to_double(half[h]);
        }
    }
    vdouble reciprocal[2] = {1.0 / total[0], 1.0 / total[1]};
    for (Py_ssize_t i = 0; i < length; i++) {
        vfloat half[2];
        memcpy(half, &e[i], sizeof half);
        for (int h = 0; h < 2; h++) {
            half[h] = __builtin_convertvector(to_double(half[h]) * reciprocal[h], vfloat);
        }
        memcpy(out + i * stride, half, sizeof half);
    }
    softmax_columns_limits_float(x, out, length, stride, m, total);
}

/* to[j][i] = from[i][j] for an n by m matrix of T, rows `from_row` and
 * `to_row` items apart. */
#define TRANSPOSE(T, FROM, TO, N, M, FROM_ROW, TO_ROW)                                     \
    do {                                                                                   \
        const T *from_ = (const T *)(FROM);                                                \
        T *to_ = (T *)(TO);                                                                \
        for (Py_ssize_t i_ = 0; i_ < (N); i_++) {                                          \
            for (Py_ssize_t j_ = 0; j_ < (M); j_++) {                                      \
                to_[j_ * (TO_ROW) + i_] = from_[i_ * (FROM_ROW) + j_];                     \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* A square tile of W rows of W lanes, rows `from_row` and `to_row` apart,
 * transposed in registers: swapping the off-diagonal blocks of h lanes between
 * rows r and r + h, for h = W/2 down to 1, transposes every block at once.
 * Each round is a two-vector permute per row, its lanes listed below (for W
 * of LANES and WIDE: TILE_LOW_W_h for row r, TILE_HIGH_W_h for row r + h). */
#define TILE_LOW_8_4 0, 1, 2, 3, 8, 9, 10, 11
#define TILE_HIGH_8_4 4, 5, 6, 7, 12, 13, 14, 15
#define TILE_LOW_8_2 0, 1, 8, 9, 4, 5, 12, 13
#define TILE_HIGH_8_2 2, 3, 10, 11, 6, 7, 14, 15
#define TILE_LOW_8_1 0, 8, 2, 10, 4, 12, 6, 14
#define TILE_HIGH_8_1 1, 9, 3, 11, 5, 13, 7, 15
#define TILE_LOW_16_8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define TILE_HIGH_16_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define TILE_LOW_16_4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define TILE_HIGH_16_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define TILE_LOW_16_2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define TILE_HIGH_16_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define TILE_LOW_16_1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define TILE_HIGH_16_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define TILE_ROUND(v, W, H, LOW, HIGH)                                                     \
    _Pragma("GCC unroll 16")                                                               \
    for (int r = 0; r < (W); r++) {                                                        \
        if (!(r & (H))) {                                                                  \
            __typeof__(v[0]) a = v[r], b = v[r + (H)];                                     \
            v[r] = __builtin_shufflevector(a, b, LOW);                                     \
            v[r + (H)] = __builtin_shufflevector(a, b, HIGH);                              \
        }                                                                                  \
    }
#define TILE_TRANSPOSE(NAME, T, VT, W, ROUNDS)                                             \
    INLINE void NAME(const T *from, Py_ssize_t from_row, T *to, Py_ssize_t to_row)         \
    {                                                                                      \
        VT v[W];                                                                           \
        for (int r = 0; r < W; r++) {                                                      \
            memcpy(&v[r], from + r * from_row, sizeof v[r]);                               \
        }                                                                                  \
        ROUNDS                                                                             \
        for (int r = 0; r < W; r++) {                                                      \
            memcpy(to + r * to_row, &v[r], sizeof v[r]);                                   \
        }                                                                                  \
    }
TILE_TRANSPOSE(tile_transpose_lanes, double, vdouble, 8,
               TILE_ROUND(v, 8, 4, TILE_LOW_8_4, TILE_HIGH_8_4)
               TILE_ROUND(v, 8, 2, TILE_LOW_8_2, TILE_HIGH_8_2)
               TILE_ROUND(v, 8, 1, TILE_LOW_8_1, TILE_HIGH_8_1))
TILE_TRANSPOSE(tile_transpose_wide, float, vfloat_wide, 16,
               TILE_ROUND(v, 16, 8, TILE_LOW_16_8, TILE_HIGH_16_8)
               TILE_ROUND(v, 16, 4, TILE_LOW_16_4, TILE_HIGH_16_4)
               TILE_ROUND(v, 16, 2, TILE_LOW_16_2, TILE_HIGH_16_2)
               TILE_ROUND(v, 16, 1, TILE_LOW_16_1, TILE_HIGH_16_1))

/* TRANSPOSE by whole tiles of W (TILE's width) where they fit, the edges an
 * entry at a time. */
#define TILED_TRANSPOSE(T, TILE, W, FROM, TO, N, M, FROM_ROW, TO_ROW)                      \
    do {                                                                                   \
        const T *tf_ = (const T *)(FROM);                                                  \
        T *tt_ = (T *)(TO);                                                                \
        Py_ssize_t tn_ = (N) / (W) * (W), tm_ = (M) / (W) * (W);                           \
        for (Py_ssize_t i_ = 0; i_ < tn_; i_ += (W)) {                                     \
            for (Py_ssize_t j_ = 0; j_ < tm_; j_ += (W)) {                                 \
                TILE(tf_ + i_ * (FROM_ROW) + j_, FROM_ROW, tt_ + j_ * (TO_ROW) + i_, TO_ROW); \
            }                                                                              \
        }                                                                                  \
        TRANSPOSE(T, tf_ + tm_, tt_ + tm_ * (TO_ROW), tn_, (M) - tm_, FROM_ROW, TO_ROW);   \
        TRANSPOSE(T, tf_ + tn_ * (FROM_ROW), tt_ + tn_, (N) - tn_, M, FROM_ROW, TO_ROW);   \
    } while (0)

/* Rows shorter than BELOW (softmax's: a vector), a vector of rows at a time:
 * the rows are transposed into scratch, one to a lane, and computed by the
 * columns' kernel's chunk, whose lanes take each row through the rows'
 * arithmetic all in vectors; the last rows are padded with zeros (finite,
 * discarded). `reduce`: one result per row. */
#define ROWS_SHORT(NAME, T, WIDTH, BELOW, CHUNK, TILE)                                     \
    INLINE void NAME(const T *x, T *out, Py_ssize_t rows, Py_ssize_t cols, int reduce)     \
    {                                                                                      \
        T in[WIDTH * BELOW], result[WIDTH * BELOW];                                        \
        for (Py_ssize_t first = 0; first < rows; first += WIDTH) {                         \
            Py_ssize_t count = rows - first < WIDTH ? rows - first : WIDTH;                \
            if (count < WIDTH) {                                                           \
                memset(in, 0, cols * WIDTH * sizeof(T));                                   \
            }                                                                              \
            TILED_TRANSPOSE(T, TILE, WIDTH, x + first * cols, in, count, cols, cols, WIDTH);   \
            CHUNK(in, result, cols, WIDTH, reduce);                                        \
            if (reduce) {                                                                  \
                memcpy(out + first, result, count * sizeof(T));                            \
            }                                                                              \
            else {                                                                         \
                TILED_TRANSPOSE(T, TILE, WIDTH, result, out + first * cols, cols, count, WIDTH, \
                                cols);                                                     \
            }                                                                              \
        }                                                                                  \
    }

/* A rows' kernel's range function: rows begin to end, in one precision,
 * short ones a vector of rows at a time, the others by ROWS(x, out, rows,
 * cols, reduce); `reduce` (the job's): one result per row. */
#define ROWS_RANGE(NAME, T, BELOW, SHORT, ROWS, CLONES)                                    \
    INLINE void NAME##_dense(const T *x, T *out, Py_ssize_t rows, Py_ssize_t cols,         \
                             int reduce)                                                   \
    {                                                                                      \
        if (cols < BELOW) {                                                                \
            SHORT(x, out, rows, cols, reduce);                                             \
        }                                                                                  \
        else {                                                                             \
            ROWS(x, out, rows, cols, reduce);                                              \
        }                                                                                  \
    }                                                                                      \
    CLONES static void NAME(void *ctx, Py_ssize_t begin, Py_ssize_t end)                   \
    {                                                                                      \
        RowsJob *job = ctx;                                                                \
        Py_ssize_t cols = job->cols, width = job->reduce ? 1 : cols;                       \
        T *out = (T *)job->b[1].view.buf + begin * width;                                  \
        if (!job->b[0].dense) { /* whole rows gathered, a stretch at a time */             \
            T scratch[STRETCH];                                                            \
            Py_ssize_t per = STRETCH / cols;                                               \
            for (Py_ssize_t r = begin; r < end; r += per) {                                \
                Py_ssize_t count = end - r < per ? end - r : per;                          \
                gather(&job->b[0], r * cols, count * cols, scratch);                       \
                NAME##_dense(scratch, out + (r - begin) * width, count, cols, job->reduce);\
            }                                                                              \
            return;                                                                        \
        }                                                                                  \
        NAME##_dense((const T *)job->b[0].view.buf + begin * cols, out, end - begin, cols, \
                     job->reduce);                                                         \
    }
/* ROWS of a rows' kernel that takes one row at a time. */
#define EACH_ROW(NAME, T, ROW)                                                             \
    INLINE void NAME(const T *x, T *out, Py_ssize_t rows, Py_ssize_t cols, int reduce)     \
    {                                                                                      \
        for (Py_ssize_t r = 0; r < rows; r++) {                                            \
            ROW(x + r * cols, out + r * cols, cols, reduce);                               \
        }                                                                                  \
    }
EACH_ROW(softmax_rows_double, double, softmax_row_double)
EACH_ROW(softmax_rows_float, float, softmax_row_float)

/* ---- log-space rows ----------------------------------------------------- */

/* The log-softmax of each row, or its logsumexp, as the generic formula
 * (arraykit/_log_space.py) defines them: the row's maximum m; r, the sum of
 * exp(x - m) over the entries below m (the exps carry the rounding error of
 * x - m, as softmax's do), plus the count of the maxima less one, so that r
 * keeps its relative accuracy when the others are far below; L = log1p(r);
 * then each entry is (x - m) - L in the input's precision, L rounded to it
 * first, or the row's logsumexp m + L rounded once. Both terms of an entry are
 * of one sign, so its three roundings stay within about two ulp; the entries'
 * pass in float lanes is float32's cheapest. Rows of a vector or more sum in
 * compensated double lanes (float32's exps in float lanes, summed in double);
 * shorter rows, one to a lane, take the columns' chunk below, whatever their
 * layout. Rows whose
 * maximum is not finite (NaN, +inf, or -inf alone) take their limits. */

/* The limits of a row whose maximum is not finite: NaN; or the maxima share
 * the mass (log(1/count) each), the rest -inf; logsumexp: NaN, or the maximum.
 * Entries `stride` apart (the rows' kernels pass 1, the columns' their width);
 * `reduce`: the one result at out. */
#define LOG_LIMIT(NAME, T)                                                                 \
    static void NAME(const T *x, T *out, Py_ssize_t cols, Py_ssize_t stride, int reduce)   \
    {                                                                                      \
        T m = -INFINITY;                                                                   \
        int nan = 0;                                                                       \
        Py_ssize_t count = 0;                                                              \
        for (Py_ssize_t j = 0; j < cols; j++) {                                            \
            T v = x[j * stride];                                                           \
            nan |= v != v;                                                                 \
            m = v > m ? v : m;                                                             \
        }                                                                                  \
        for (Py_ssize_t j = 0; j < cols; j++) {                                            \
            count += x[j * stride] == m;                                                   \
        }                                                                                  \
        if (reduce) {                                                                      \
            out[0] = nan ? (T)NAN : m;                                                     \
            return;                                                                        \
        }                                                                                  \
        T share = nan ? (T)NAN : (T)-log((double)count), rest = nan ? (T)NAN : (T)-INFINITY; \
        for (Py_ssize_t j = 0; j < cols; j++) {                                            \
            out[j * stride] = x[j * stride] == m ? share : rest;                           \
        }                                                                                  \
    }
LOG_LIMIT(log_limit_double, double)
LOG_LIMIT(log_limit_float, float)

/* r of a row of at least one vector, with maximum m (finite): NaN if the row
 * holds a NaN (its exp is NaN, and e - e keeps it where it is not below m).
 * The last vector overlaps the one before: its lanes read there are taken as
 * -inf, below m with an exp of 0, so that it takes the loop's arithmetic. (A
 * mask of the fresh lanes combined with the comparison's, GCC (12) compiles
 * one lane at a time.) */
INLINE void
log_rest_step_double(vdouble v, vdouble mv, vdouble *acc, vdouble *comp, vdouble *count)
{
    vdouble e = softmax_exp_lanes(v, mv);
    vlong below = lanes_lt(v, mv);
    add_compensated(acc, comp, select_lanes(below, e, e - e));
    *count += select_lanes(below, (vdouble){0}, (vdouble){0} + 1.0);
}

INLINE double
log_rest_double(const double *x, Py_ssize_t cols, double m)
{
    vdouble v, mv = (vdouble){0} + m, acc = {0}, comp = {0}, count = {0};
    Py_ssize_t last = cols - LANES, k;
    for (k = 0; k <= last; k += LANES) {
        memcpy(&v, x + k, sizeof v);
        log_rest_step_double(v, mv, &acc, &comp, &count);
    }
    memcpy(&v, x + last, sizeof v);
    log_rest_step_double(select_lanes(lanes_from(k - last), v, (vdouble){0} - INFINITY), mv,
                         &acc, &comp, &count);
    return compensated_total(acc, comp) + (lanes_total(count) - 1.0);
}

/* The same in float lanes, the maxima counted in integer lanes (the loop's
 * cheapest count). */
INLINE void
log_rest_step_float(vfloat_wide v, vfloat_wide mv, vdouble *acc, vint_wide *maxima)
{
    vfloat_wide e = softmax_exp_wide(v, mv);
    vint_wide below = wide_lt(v, mv);
    *acc += widened(select_wide(below, e, e - e));
    *maxima -= ~below;
}

INLINE double
log_rest_float(const float *x, Py_ssize_t cols, float m)
{
    vfloat_wide v, mv = (vfloat_wide){0} + m;
    vdouble acc = {0};
    vint_wide maxima = {0};
    Py_ssize_t last = cols - WIDE, k;
    for (k = 0; k <= last; k += WIDE) {
        memcpy(&v, x + k, sizeof v);
        log_rest_step_float(v, mv, &acc, &maxima);
    }
    memcpy(&v, x + last, sizeof v);
    log_rest_step_float(select_wide(wide_lanes_from(k - last), v, (vfloat_wide){0} - INFINITY),
                        mv, &acc, &maxima);
    Py_ssize_t count = 0; /* in integers: exact, so not a chain of conversions */
    for (int lane = 0; lane < WIDE; lane++) {
        count += maxima[lane];
    }
    return lanes_total(acc) + ((double)count - 1.0);
}

/* The bytes of the rows LOG_ROWS takes together: their entries' pass reads
 * them again after the group's logarithm, and they should still be in the
 * first-level cache then, beside the next rows' reads (a quarter of the
 * smallest such cache of current x86 and ARM cores; docs/benchmarks.md). */
#define GROUP_BYTES (8 * 1024)

/* Rows of at least one vector, up to a vector of rows at a time (as many as
 * GROUP_BYTES hold, at least one): each row's m and r (independent of the
 * others', so that one row's waits overlap the next's work), then L =
 * log1p(r) for all of them in one vector (lane by lane: a row's bits whatever
 * its neighbours), then their entries (x − m) − L, or their logsumexp m + L
 * rounded once. NAME##_any with `labels`: each row's
 * entry at its label alone, negated, into out (the cross-entropy's loss, the
 * entry's bits; a row that takes its limits writes them to `scratch`, of
 * `cols` values, first). */
#define LOG_ROWS(NAME, T, LARGEST, REST, LIMIT, LOG1P, MOST)                               \
    INLINE void NAME##_any(const T *x, T *out, Py_ssize_t rows, Py_ssize_t cols,           \
                           int reduce, const long long *labels, T *scratch)                \
    {                                                                                      \
        Py_ssize_t width = reduce ? 1 : cols;                                              \
        Py_ssize_t fit = GROUP_BYTES / (cols * (Py_ssize_t)sizeof(T));                     \
        int group = fit < 1 ? 1 : fit > (MOST) ? (MOST) : (int)fit;                        \
        for (Py_ssize_t first = 0; first < rows; first += group) {                         \
            int count = rows - first < group ? (int)(rows - first) : group;                \
            T m[LANES];                                                                    \
            vdouble r = {0};                                                               \
            for (int g = 0; g < count; g++) {                                              \
                const T *row = x + (first + g) * cols;                                     \
                m[g] = LARGEST(row, cols);                                                 \
                r[g] = isfinite(m[g]) ? REST(row, cols, m[g]) : NAN;                       \
            }                                                                              \
            vlong fails = ~lanes_ge(r, (vdouble){0}); /* a NaN, or a maximum not finite */ \
            vdouble rest = LOG1P(select_lanes(fails, (vdouble){0}, r));                    \
            for (int g = 0; g < count; g++) {                                              \
                const T *row = x + (first + g) * cols;                                     \
                T *to = out + (first + g) * width;                                         \
                T mg = m[g], rounded = (T)rest[g];                                         \
                if (labels != NULL) {                                                      \
                    T entry;                                                               \
                    if (fails[g]) { /* the limits' row, in scratch, and its entry */      \
                        LIMIT(row, scratch, cols, 1, 0);                                   \
                        entry = scratch[labels[first + g]];                                \
                    }                                                                      \
                    else {                                                                 \
                        entry = (row[labels[first + g]] - mg) - rounded;                   \
                    }                                                                      \
                    out[first + g] = -entry;                                               \
                }                                                                          \
                else if (fails[g]) {                                                       \
                    LIMIT(row, to, cols, 1, reduce);                                       \
                }                                                                          \
                else if (reduce) {                                                         \
                    to[0] = (T)((double)mg + rest[g]);                                     \
                }                                                                          \
                else {                                                                     \
                    for (Py_ssize_t j = 0; j < cols; j++) {                                \
                        to[j] = (row[j] - mg) - rounded;                                   \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    INLINE void NAME(const T *x, T *out, Py_ssize_t rows, Py_ssize_t cols, int reduce)     \
    {                                                                                      \
        NAME##_any(x, out, rows, cols, reduce, NULL, NULL);                                \
    }
LOG_ROWS(log_rows_double, double, row_max_double, log_rest_double, log_limit_double, log1p_lanes,
         LANES)
LOG_ROWS(log_rows_float, float, row_max_float, log_rest_float, log_limit_float,
         log1p_narrow_lanes, LANES)

/* The log-space rows' chunks: rows one to a lane (a block's columns, or short
 * rows transposed into scratch), `stride` apart, out in the same layout or
 * (reduce) one result per lane. Each lane takes the rows' arithmetic above —
 * m; r from the exps below m and the count of the maxima; L = log1p(r), here
 * a vector at a time — so a row gives the same bits in either kernel. */

/* The columns' terms, TERM(x, out, m, count) at one position of a chunk: the
 * log-space kernels' term of r (its exp below m, else 0; NaN stays NaN), the
 * maxima counted; softmax's exp, written to out (its finish scales it there). */
#define LOG_TERM(NAME, T, VT, MT, EXP, LESS, SELECT)                                       \
    INLINE VT NAME(const T *x, T *out, VT m, VT *count)                                    \
    {                                                                                      \
        (void)out;                                                                         \
        VT v, zero = {0};                                                                  \
        memcpy(&v, x, sizeof v);                                                           \
        VT e = EXP(v, m);                                                                  \
        MT below = LESS(v, m);                                                             \
        *count += SELECT(below, zero, zero + 1);                                           \
        return SELECT(below, e, e - e);                                                    \
    }
LOG_TERM(log_term_lanes, double, vdouble, vlong, softmax_exp_lanes, lanes_lt, select_lanes)
LOG_TERM(log_term_wide, float, vfloat_wide, vint_wide, softmax_exp_wide, wide_lt, select_wide)

#define SOFTMAX_TERM(NAME, T, VT, EXP)                                                     \
    INLINE VT NAME(const T *x, T *out, VT m, VT *count)                                    \
    {                                                                                      \
        (void)count;                                                                       \
        VT v;                                                                              \
        memcpy(&v, x, sizeof v);                                                           \
        VT e = EXP(v, m);                                                                  \
        memcpy(out, &e, sizeof e);                                                         \
        return e;                                                                          \
    }
SOFTMAX_TERM(softmax_term_lanes, double, vdouble, softmax_exp_lanes)
SOFTMAX_TERM(softmax_term_wide, float, vfloat_wide, softmax_exp_wide)

/* A chunk's end, from its lanes' m and r (in double): L = log1p(r) where r >=
 * 0, each entry (x - m) - L as the rows' kernel takes it, or the logsumexp
 * m + L rounded once; the lanes whose rows fail (r not >= 0: a NaN, or a
 * maximum that is not finite) take their limits. */
INLINE void
log_finish_double(const double *x, double *out, Py_ssize_t length, Py_ssize_t stride, int reduce,
                  vdouble m, vdouble r)
{
    vdouble zero = {0}, v;
    vlong fails = ~lanes_ge(r, zero);
    vdouble rest = log1p_lanes(select_lanes(fails, zero, r));
    for (Py_ssize_t i = 0; i < (reduce ? 1 : length); i++) {
        memcpy(&v, x + i * stride, sizeof v);
        v = reduce ? m + rest : (v - m) - rest;
        memcpy(out + i * stride, &v, sizeof v);
    }
    if (any_lanes(fails)) {
        for (int lane = 0; lane < LANES; lane++) {
            if (fails[lane]) {
                log_limit_double(x + lane, out + lane, length, stride, reduce);
            }
        }
    }
}

INLINE void
log_finish_float(const float *x, float *out, Py_ssize_t length, Py_ssize_t stride, int reduce,
                 vfloat_wide m, const vdouble r[2])
{
    vfloat maxima[2];
    memcpy(maxima, &m, sizeof maxima);
    vdouble rest[2];
    vfloat rounded[2];
    vlong fails[2];
    for (int h = 0; h < 2; h++) {
        fails[h] = ~lanes_ge(r[h], (vdouble){0});
        rest[h] = log1p_narrow_lanes(select_lanes(fails[h], (vdouble){0}, r[h]));
        rounded[h] = reduce ? __builtin_convertvector(to_double(maxima[h]) + rest[h], vfloat)
                            : __builtin_convertvector(rest[h], vfloat);
    }
    vfloat_wide v, rest_wide;
    memcpy(&rest_wide, rounded, sizeof rest_wide);
    if (reduce) {
        memcpy(out, &rest_wide, sizeof rest_wide);
    }
    for (Py_ssize_t i = 0; i < (reduce ? 0 : length); i++) {
        memcpy(&v, x + i * stride, sizeof v);
        v = (v - m) - rest_wide;
        memcpy(out + i * stride, &v, sizeof v);
    }
    if (any_lanes(fails[0] | fails[1])) {
        for (int lane = 0; lane < WIDE; lane++) {
            if (fails[lane / LANES][lane % LANES]) {
                log_limit_float(x + lane, out + lane, length, stride, reduce);
            }
        }
    }
}

/* Rows shorter than a vector: Neumaier's sum in each lane. */
INLINE void
log_columns_double(const double *x, double *out, Py_ssize_t length, Py_ssize_t stride,
                   int reduce)
{
    vdouble m = columns_max_lanes(x, length, stride), sum = {0}, err = {0}, count = {0};
    for (Py_ssize_t i = 0; i < length; i++) {
        neumaier_lanes(&sum, &err, log_term_lanes(x + i * stride, out, m, &count));
    }
    log_finish_double(x, out, length, stride, reduce, m, (sum + err) + (count - 1.0));
}

/* float32 rows shorter than a vector of floats: the exps in float lanes (their
 * rounding errors carried, as the rows' kernel's), summed in double. */
INLINE void
log_columns_float(const float *x, float *out, Py_ssize_t length, Py_ssize_t stride, int reduce)
{
    vfloat_wide m = columns_max_wide(x, length, stride), count = {0};
    vdouble sum[2] = {{0}, {0}}, r[2];
    for (Py_ssize_t i = 0; i < length; i++) {
        vfloat_wide e = log_term_wide(x + i * stride, out, m, &count);
        vfloat half[2];
        memcpy(half, &e, sizeof half);
        sum[0] += to_double(half[0]);
        sum[1] += to_double(half[1]);
    }
    vfloat counts[2];
    memcpy(counts, &count, sizeof counts);
    for (int h = 0; h < 2; h++) {
        r[h] = sum[h] + (to_double(counts[h]) - 1.0);
    }
    log_finish_float(x, out, length, stride, reduce, m, r);
}

/* Rows of a vector or more, as the rows' kernels sum a row (log_rest_double,
 * softmax_row_double): its vector of compensated sums becomes one accumulator
 * per position modulo a vector, the fresh entries of its overlapping last
 * vector go to theirs by their place in that vector, and the accumulators are
 * totalled in compensated_total's order. TERM at each position (LOG_TERM's or
 * SOFTMAX_TERM's). */
#define COLUMNS_SUM_DOUBLE(NAME, TERM)                                                     \
    INLINE vdouble NAME(const double *x, double *out, Py_ssize_t length, Py_ssize_t stride, \
                        vdouble m, vdouble *count)                                         \
    {                                                                                      \
        vdouble zero = {0}, acc[LANES], comp[LANES];                                       \
        for (int j = 0; j < LANES; j++) {                                                  \
            acc[j] = comp[j] = zero;                                                       \
        }                                                                                  \
        Py_ssize_t last = length - LANES, k;                                               \
        for (k = 0; k <= last; k += LANES) {                                               \
            for (int j = 0; j < LANES; j++) {                                              \
                Py_ssize_t p = (k + j) * stride;                                           \
                add_compensated(&acc[j], &comp[j], TERM(x + p, out + p, m, count));        \
            }                                                                              \
        }                                                                                  \
        for (int j = 0; j < LANES; j++) { /* the last vector's fresh entries (else 0) */  \
            Py_ssize_t p = last + j;                                                       \
            add_compensated(&acc[j], &comp[j],                                             \
                            p >= k ? TERM(x + p * stride, out + p * stride, m, count) : zero); \
        }                                                                                  \
        vdouble total = acc[0], error = zero;                                              \
        for (int j = 1; j < LANES; j++) {                                                  \
            vdouble t = total + acc[j], back = t - total;                                  \
            error += (total - (t - back)) + (acc[j] - back);                               \
            total = t;                                                                     \
        }                                                                                  \
        vdouble comps = ((comp[0] + comp[1]) + (comp[2] + comp[3])) +                      \
                        ((comp[4] + comp[5]) + (comp[6] + comp[7]));                       \
        return total + (error + comps);                                                    \
    }
COLUMNS_SUM_DOUBLE(log_sum_long_double, log_term_lanes)
COLUMNS_SUM_DOUBLE(softmax_sum_long_double, softmax_term_lanes)

INLINE void
log_columns_long_double(const double *x, double *out, Py_ssize_t length, Py_ssize_t stride,
                        int reduce)
{
    vdouble m = columns_max_lanes(x, length, stride), count = {0};
    vdouble total = log_sum_long_double(x, out, length, stride, m, &count);
    log_finish_double(x, out, length, stride, reduce, m, total + (count - 1.0));
}

/* acc[h] += a + b, in double, by halves: widened()'s sum of a vector's halves,
 * with a vector's floats at j and j + LANES as a and b. */
INLINE void
add_halves(vdouble acc[2], vfloat_wide a, vfloat_wide b)
{
    vfloat low[2], high[2];
    memcpy(low, &a, sizeof low);
    memcpy(high, &b, sizeof high);
    acc[0] += to_double(low[0]) + to_double(high[0]);
    acc[1] += to_double(low[1]) + to_double(high[1]);
}

/* float32 rows of a vector of floats or more, as the rows' kernels sum a row
 * (log_rest_float, softmax_row_float): their double lanes j, each fed the
 * floats at j and j + LANES of a vector, become eight accumulators (in two
 * halves, for the sixteen lanes), fed likewise; `total` their sums, in two
 * halves. */
#define COLUMNS_SUM_FLOAT(NAME, TERM)                                                      \
    INLINE void NAME(const float *x, float *out, Py_ssize_t length, Py_ssize_t stride,     \
                     vfloat_wide m, vfloat_wide *count, vdouble total[2])                  \
    {                                                                                      \
        vdouble acc[LANES][2];                                                             \
        for (int j = 0; j < LANES; j++) {                                                  \
            acc[j][0] = acc[j][1] = (vdouble){0};                                          \
        }                                                                                  \
        Py_ssize_t last = length - WIDE, k;                                                \
        for (k = 0; k <= last; k += WIDE) {                                                \
            for (int j = 0; j < LANES; j++) {                                              \
                Py_ssize_t p = (k + j) * stride, q = (k + j + LANES) * stride;             \
                vfloat_wide a = TERM(x + p, out + p, m, count);                            \
                add_halves(acc[j], a, TERM(x + q, out + q, m, count));                     \
            }                                                                              \
        }                                                                                  \
        for (int j = 0; j < LANES; j++) { /* the last vector's fresh entries (else 0) */  \
            Py_ssize_t lo = last + j, hi = lo + LANES;                                     \
            if (hi >= k) {                                                                 \
                vfloat_wide a = lo >= k ? TERM(x + lo * stride, out + lo * stride, m, count) \
                                        : (vfloat_wide){0};                                \
                add_halves(acc[j], a, TERM(x + hi * stride, out + hi * stride, m, count)); \
            }                                                                              \
        }                                                                                  \
        for (int h = 0; h < 2; h++) {                                                      \
            total[h] = ((acc[0][h] + acc[1][h]) + (acc[2][h] + acc[3][h])) +               \
                       ((acc[4][h] + acc[5][h]) + (acc[6][h] + acc[7][h]));                \
        }                                                                                  \
    }
COLUMNS_SUM_FLOAT(log_sum_long_float, log_term_wide)
COLUMNS_SUM_FLOAT(softmax_sum_long_float, softmax_term_wide)

INLINE void
log_columns_long_float(const float *x, float *out, Py_ssize_t length, Py_ssize_t stride,
                       int reduce)
{
    vfloat_wide m = columns_max_wide(x, length, stride), count = {0};
    vdouble r[2];
    log_sum_long_float(x, out, length, stride, m, &count, r);
    vfloat counts[2];
    memcpy(counts, &count, sizeof counts);
    for (int h = 0; h < 2; h++) {
        r[h] += to_double(counts[h]) - 1.0;
    }
    log_finish_float(x, out, length, stride, reduce, m, r);
}

/* Softmax's columns of a vector or more: the exps written and summed as the
 * rows' kernel sums them (softmax_row_double, softmax_row_float), then scaled
 * in place as it scales them (a division in double; a float32 product by the
 * reciprocal rounded to float). */
INLINE void
softmax_columns_long_double(const double *x, double *out, Py_ssize_t length, Py_ssize_t stride,
                            int reduce)
{
    (void)reduce;
    vdouble m = columns_max_lanes(x, length, stride), count = {0}, v;
    vdouble total = softmax_sum_long_double(x, out, length, stride, m, &count);
    for (Py_ssize_t i = 0; i < length; i++) {
        memcpy(&v, out + i * stride, sizeof v);
        v /= total;
        memcpy(out + i * stride, &v, sizeof v);
    }
    softmax_columns_limits_double(x, out, length, stride, m, total);
}

INLINE void
softmax_columns_long_float(const float *x, float *out, Py_ssize_t length, Py_ssize_t stride,
                           int reduce)
{
    (void)reduce;
    vfloat_wide m = columns_max_wide(x, length, stride), count = {0}, v;
    vdouble total[2], reciprocal[2];
    softmax_sum_long_float(x, out, length, stride, m, &count, total);
    for (int h = 0; h < 2; h++) {
        reciprocal[h] = 1.0 / total[h];
    }
    vfloat_wide factor = narrowed(reciprocal);
    for (Py_ssize_t i = 0; i < length; i++) {
        memcpy(&v, out + i * stride, sizeof v);
        v *= factor;
        memcpy(out + i * stride, &v, sizeof v);
    }
    softmax_columns_limits_float(x, out, length, stride, m, total);
}

/* A chunk of any length: the rows' kernel's arithmetic for that length. */
#define LOG_COLUMNS_ANY(NAME, T, WIDTH, SHORT, LONG)                                       \
    INLINE void NAME(const T *x, T *out, Py_ssize_t length, Py_ssize_t stride, int reduce) \
    {                                                                                      \
        if (length < WIDTH) {                                                              \
            SHORT(x, out, length, stride, reduce);                                         \
        }                                                                                  \
        else {                                                                             \
            LONG(x, out, length, stride, reduce);                                          \
        }                                                                                  \
    }
LOG_COLUMNS_ANY(log_columns_any_double, double, LANES, log_columns_double, log_columns_long_double)
LOG_COLUMNS_ANY(log_columns_any_float, float, WIDE, log_columns_float, log_columns_long_float)
LOG_COLUMNS_ANY(softmax_columns_any_double, double, LANES, softmax_columns_double,
                softmax_columns_long_double)
LOG_COLUMNS_ANY(softmax_columns_any_float, float, WIDE, softmax_columns_float,
                softmax_columns_long_float)

/* Softmax's rows shorter than these take the columns' chunks, transposed a
 * vector of rows at a time (the same bits as the rows' kernel, whose per-row
 * maximum, totals and reciprocal cost more than the transposition up to
 * there: docs/benchmarks.md, "Softmax's columns of any length"). */
#define SOFTMAX_TRANSPOSED_BELOW_D 32
#define SOFTMAX_TRANSPOSED_BELOW_F 96
ROWS_SHORT(softmax_short_double, double, LANES, SOFTMAX_TRANSPOSED_BELOW_D,
           softmax_columns_any_double, tile_transpose_lanes)
ROWS_SHORT(softmax_short_float, float, WIDE, SOFTMAX_TRANSPOSED_BELOW_F, softmax_columns_any_float,
           tile_transpose_wide)
ROWS_RANGE(softmax_range_double, double, SOFTMAX_TRANSPOSED_BELOW_D, softmax_short_double,
           softmax_rows_double, VECTOR_CLONES_FUSED)
ROWS_RANGE(softmax_range_float, float, SOFTMAX_TRANSPOSED_BELOW_F, softmax_short_float,
           softmax_rows_float, VECTOR_CLONES_FUSED)

/* softmax_rows(x, out, row_length, threads=1) */
static PyObject *
softmax_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    RowsJob job = {b, 0, 0};
    int threads = nargs == 4 ? (int)PyLong_AsLong(args[3]) : 1;
    if (nargs != 3 && nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "expected (x, out, row_length[, threads])");
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    int ok = acquire_rows(args, b, 2, 0x2, 0x1, 2, args[2], &job.cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    run(b[0].kind == 'd' ? &softmax_range_double : &softmax_range_float, &job,
        b[0].n / job.cols, b[0].n, threads, &b[1]);
    release_all(b, 2);
    return Py_NewRef(Py_True);
}

/* Rows shorter than these take the columns' chunks, transposed a vector of rows
 * at a time (the same bits as the rows' kernel, whose per-row totals and
 * logarithm cost more than the transposition up to there: docs/benchmarks.md,
 * "The log-space family"). */
#define LOG_TRANSPOSED_BELOW_D 64
#define LOG_TRANSPOSED_BELOW_F 128
ROWS_SHORT(log_short_double, double, LANES, LOG_TRANSPOSED_BELOW_D, log_columns_any_double,
           tile_transpose_lanes)
ROWS_SHORT(log_short_float, float, WIDE, LOG_TRANSPOSED_BELOW_F, log_columns_any_float,
           tile_transpose_wide)
ROWS_RANGE(log_range_double, double, LOG_TRANSPOSED_BELOW_D, log_short_double, log_rows_double,
           VECTOR_CLONES_FUSED)
ROWS_RANGE(log_range_float, float, LOG_TRANSPOSED_BELOW_F, log_short_float, log_rows_float,
           VECTOR_CLONES_FUSED)

/* log_softmax_rows(x, out, row_length, threads=1), and logsumexp_rows(x, out,
 * row_length, threads=1) with one result per row in out. */
static PyObject *
log_rows(PyObject *const *args, Py_ssize_t nargs, int reduce)
{
    Buffer b[2];
    RowsJob job = {b, 0, reduce};
    if (nargs != 3 && nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "expected (x, out, row_length[, threads])");
        return NULL;
    }
    int threads = nargs == 4 ? (int)PyLong_AsLong(args[3]) : 1;
    if (PyErr_Occurred()) {
        return NULL;
    }
    int ok = reduce ? acquire_reduced(args, b, 0x1, &job.cols)
                    : acquire_rows(args, b, 2, 0x2, 0x1, 2, args[2], &job.cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    run(b[0].kind == 'd' ? &log_range_double : &log_range_float, &job, b[0].n / job.cols,
        b[0].n, threads, &b[1]);
    release_all(b, 2);
    return Py_NewRef(Py_True);
}

static PyObject *
log_softmax_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return log_rows(args, nargs, 0);
}

static PyObject *
logsumexp_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return log_rows(args, nargs, 1);
}

/* ---- the cross-entropy of class indices ---------------------------------- */

/* Each row's -log_softmax at its label, bit for bit the log-softmax's entry
 * there negated: rows of LOG_ROWS's kernel take the entry at the label alone;
 * shorter rows are computed a stretch at a time into scratch, which stays in
 * cache, and the label's entry is read back from it (strided rows are
 * gathered first, a stretch at a time). No array of the log-softmax is
 * written. */
typedef struct {
    RowsJob rows; /* x, losses (one per row) */
    const long long *labels;
} PickJob;

#define PICK_RANGE(NAME, T, DENSE, BELOW, ROWS)                                            \
    VECTOR_CLONES_FUSED static void NAME(void *ctx, Py_ssize_t begin, Py_ssize_t end)      \
    {                                                                                      \
        PickJob *job = ctx;                                                                \
        Py_ssize_t cols = job->rows.cols, per = STRETCH / cols;                            \
        const Buffer *in = &job->rows.b[0];                                                \
        T *losses = (T *)job->rows.b[1].view.buf, scratch[STRETCH], gathered[STRETCH];     \
        if (in->dense && cols >= BELOW) { /* the rows' kernel picks without writing a row */ \
            ROWS((const T *)in->view.buf + begin * cols, losses + begin, end - begin, cols, 0, \
                 job->labels + begin, scratch);                                            \
            return;                                                                        \
        }                                                                                  \
        for (Py_ssize_t r = begin; r < end; r += per) {                                    \
            Py_ssize_t count = end - r < per ? end - r : per;                              \
            const T *x = (const T *)in->view.buf + r * cols;                               \
            if (!in->dense) { /* whole rows gathered, a stretch at a time */               \
                gather(in, r * cols, count * cols, gathered);                              \
                x = gathered;                                                              \
            }                                                                              \
            if (cols >= BELOW) {                                                           \
                ROWS(x, losses + r, count, cols, 0, job->labels + r, scratch);             \
                continue;                                                                  \
            }                                                                              \
            DENSE(x, scratch, count, cols, 0);                                             \
            for (Py_ssize_t i = 0; i < count; i++) {                                       \
                losses[r + i] = -scratch[i * cols + job->labels[r + i]];                   \
            }                                                                              \
        }                                                                                  \
    }
PICK_RANGE(pick_range_double, double, log_range_double_dense, LOG_TRANSPOSED_BELOW_D,
           log_rows_double_any)
PICK_RANGE(pick_range_float, float, log_range_float_dense, LOG_TRANSPOSED_BELOW_F,
           log_rows_float_any)

/* `rows` int64 labels, C-contiguous and aligned: a buffer (held in `view`,
 * which the caller releases where its obj is set), or a tensor's memory as
 * (address, elements, "q") (see acquire_address); NULL (no exception set)
 * for anything else. */
static const long long *
acquire_labels(PyObject *obj, Py_buffer *view, Py_ssize_t rows)
{
    if (PyTuple_CheckExact(obj)) {
        if (PyTuple_GET_SIZE(obj) != 3 || !PyUnicode_Check(PyTuple_GET_ITEM(obj, 2))) {
            return NULL;
        }
        void *address = PyLong_AsVoidPtr(PyTuple_GET_ITEM(obj, 0));
        Py_ssize_t n = PyLong_AsSsize_t(PyTuple_GET_ITEM(obj, 1));
        const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(obj, 2));
        if (PyErr_Occurred() || kind == NULL || strcmp(kind, "q") != 0 || n != rows ||
            (address == NULL && rows > 0) || !aligned(address, 8)) {
            PyErr_Clear();
            return NULL;
        }
        return address;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        view->obj = NULL;
        return NULL;
    }
    const char *f = view->format;
    if (f != NULL && (f[0] == '@' || f[0] == '=')) {
        f++;
    }
    if (f != NULL && (strcmp(f, "q") == 0 || strcmp(f, "l") == 0) && view->itemsize == 8 &&
        view->len == rows * 8 && aligned(view->buf, 8)) {
        return view->buf;
    }
    PyBuffer_Release(view);
    view->obj = NULL;
    return NULL;
}

/* cross_entropy_rows(x, labels, losses, row_length, threads=1): x rows of at
 * most STRETCH values, in any strides (gathered a stretch of rows at a time),
 * labels int64 (acquire_labels: one per row, each in [0, row_length)), losses
 * dense, of x's kind, one per row. False where not served, labels out of
 * range included (nothing written). */
static PyObject *
cross_entropy_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "expected (x, labels, losses, row_length[, threads])");
        return NULL;
    }
    int threads = nargs == 5 ? (int)PyLong_AsLong(args[4]) : 1;
    if (PyErr_Occurred()) {
        return NULL;
    }
    Buffer b[2];
    PickJob job = {{b, 0, 0}, NULL};
    PyObject *const rows_args[3] = {args[0], args[2], args[3]};
    int ok = acquire_reduced(rows_args, b, 0x1, &job.rows.cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    Py_ssize_t cols = job.rows.cols, rows = b[0].n / cols;
    Py_buffer labels = {0};
    const long long *label = NULL;
    if (cols <= STRETCH) {
        label = acquire_labels(args[1], &labels, rows);
    }
    int served = label != NULL;
    for (Py_ssize_t i = 0; served && i < rows; i++) {
        served = (unsigned long long)label[i] < (unsigned long long)cols;
    }
    if (served) {
        job.labels = label;
        run(b[0].kind == 'd' ? &pick_range_double : &pick_range_float, &job, rows, b[0].n,
            threads, &b[1]);
    }
    if (labels.obj != NULL) {
        PyBuffer_Release(&labels);
    }
    release_all(b, 2);
    return Py_NewRef(served ? Py_True : Py_False);
}

/* A columns' kernel's range function: chunks of WIDTH columns of each block of
 * the (blocks, length, width) array, out of its shape or (the job's `reduce`)
 * of (blocks, width); axes of at most LONGEST (the padded copy's rows). */
#define COLUMNS_RANGE(NAME, T, WIDTH, LONGEST, CHUNK)                                      \
    VECTOR_CLONES_FUSED static void NAME(void *ctx, Py_ssize_t begin, Py_ssize_t end)      \
    {                                                                                      \
        ColumnsJob *job = ctx;                                                             \
        Py_ssize_t length = job->length, width = job->width;                               \
        int reduce = job->reduce;                                                          \
        for (Py_ssize_t item = begin; item < end; item++) {                                \
            Py_ssize_t block = item / job->chunks, first = (item % job->chunks) * WIDTH;   \
            Py_ssize_t offset = block * length * width + first;                            \
            const T *x = (const T *)job->b[0].view.buf + offset;                           \
            T *out = (T *)job->b[1].view.buf + (reduce ? block * width + first : offset);  \
            if (first + WIDTH <= width) {                                                  \
                CHUNK(x, out, length, width, reduce);                                      \
            }                                                                              \
            else { /* the block's last columns, padded with zeros (finite, discarded) */   \
                T in[WIDTH * LONGEST], result[WIDTH * LONGEST];                            \
                Py_ssize_t count = width - first;                                          \
                memset(in, 0, length * WIDTH * sizeof(T));                                 \
                for (Py_ssize_t i = 0; i < length; i++) {                                  \
                    memcpy(in + i * WIDTH, x + i * width, count * sizeof(T));              \
                }                                                                          \
                CHUNK(in, result, length, WIDTH, reduce);                                  \
                for (Py_ssize_t i = 0; i < (reduce ? 1 : length); i++) {                   \
                    memcpy(out + i * width, result + i * WIDTH, count * sizeof(T));        \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }
/* A columns' kernel's entry, NAME(x, out, length, width, threads=1): the range
 * functions `fns` ([0] float32, [1] float64) over chunks of `chunk` columns of
 * each block of the (blocks, length, width) array, into out of its shape or
 * (`reduce`) of (blocks, width); False where the arrays cannot be read, or
 * the axis is longer than `longest`. */
static PyObject *
columns_entry(PyObject *const *args, Py_ssize_t nargs, const Py_ssize_t longest[2],
              const Py_ssize_t chunk[2], RangeFn const fns[2], int reduce)
{
    Buffer b[2];
    ColumnsJob job = {b, 0, 0, 0, reduce};
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "expected (x, out, length, width[, threads])");
        return NULL;
    }
    int threads = nargs == 5 ? (int)PyLong_AsLong(args[4]) : 1;
    job.width = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    int ok = reduce ? acquire_reduced(args, b, 0x0, &job.length)
                    : acquire_rows(args, b, 2, 0x2, 0x0, 2, args[2], &job.length);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    int d = b[0].kind == 'd';
    if (job.width <= 0 || job.length > longest[d] || b[0].n % (job.length * job.width) != 0) {
        release_all(b, 2);
        return Py_NewRef(Py_False);
    }
    job.chunks = (job.width + chunk[d] - 1) / chunk[d];
    run(fns[d], &job, b[0].n / (job.length * job.width) * job.chunks, b[0].n, threads, &b[1]);
    release_all(b, 2);
    return Py_NewRef(Py_True);
}

/* The softmax family's columns' kernels take axes of any length up to this: a
 * chunk's columns stay in cache between its passes, and its padded copy on the
 * stack. */
#define FAMILY_COLUMNS_LONGEST 512

COLUMNS_RANGE(softmax_columns_range_double, double, LANES, FAMILY_COLUMNS_LONGEST,
              softmax_columns_any_double)
COLUMNS_RANGE(softmax_columns_range_float, float, WIDE, FAMILY_COLUMNS_LONGEST,
              softmax_columns_any_float)
COLUMNS_RANGE(log_columns_range_double, double, LANES, FAMILY_COLUMNS_LONGEST,
              log_columns_any_double)
COLUMNS_RANGE(log_columns_range_float, float, WIDE, FAMILY_COLUMNS_LONGEST, log_columns_any_float)

/* softmax_columns(x, out, length, width, threads=1): softmax over the middle
 * axis of (blocks, length, width), of any length up to FAMILY_COLUMNS_LONGEST,
 * with the rows' kernel's bits; False where it cannot serve. */
static PyObject *
softmax_columns(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    static const Py_ssize_t longest[2] = {FAMILY_COLUMNS_LONGEST, FAMILY_COLUMNS_LONGEST};
    static const Py_ssize_t chunk[2] = {WIDE, LANES};
    static RangeFn const fns[2] = {&softmax_columns_range_float, &softmax_columns_range_double};
    return columns_entry(args, nargs, longest, chunk, fns, 0);
}

/* log_softmax_columns(x, out, length, width, threads=1) and logsumexp_columns
 * (out of shape (blocks, width)): over the middle axis of (blocks, length,
 * width), of any length up to FAMILY_COLUMNS_LONGEST, with the rows' kernel's
 * bits; False where they cannot serve. */
static PyObject *
log_columns(PyObject *const *args, Py_ssize_t nargs, int reduce)
{
    static const Py_ssize_t longest[2] = {FAMILY_COLUMNS_LONGEST, FAMILY_COLUMNS_LONGEST};
    static const Py_ssize_t chunk[2] = {WIDE, LANES};
    static RangeFn const fns[2] = {&log_columns_range_float, &log_columns_range_double};
    return columns_entry(args, nargs, longest, chunk, fns, reduce);
}

static PyObject *
log_softmax_columns(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return log_columns(args, nargs, 0);
}

static PyObject *
logsumexp_columns(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return log_columns(args, nargs, 1);
}

/* Sum of |a - b|**power over n entries from i (b NULL: of |a|**power), in
 * eight lanes per stretch of 128 and pairwise above that: at most
 * (19 + log2 n) roundings on the way to any term, and vectorised. float32
 * differences and their squares are exact in double, and cannot overflow. */
#define LANES_SUM(NAME, T, VT, WIDEN, TERM)                                                \
    INLINE double NAME(const T *a, const T *b, Py_ssize_t n, int power)                   \
    {                                                                                      \
        vdouble acc = {0};                                                                 \
        Py_ssize_t k = 0;                                                                  \
        for (; k + LANES <= n; k += LANES) {                                               \
            VT u, v = {0};                                                                 \
            memcpy(&u, a + k, sizeof u);                                                   \
            if (b != NULL) {                                                               \
                memcpy(&v, b + k, sizeof v);                                               \
            }                                                                              \
            acc += TERM(WIDEN(u), WIDEN(v), power);                                        \
        }                                                                                  \
        double total = lanes_total(acc);                                                   \
        for (; k < n; k++) {                                                               \
            total += error_power(a[k], b != NULL ? b[k] : 0.0, power);                     \
        }                                                                                  \
        return total;                                                                      \
    }
LANES_SUM(lanes_sum_float, float, vfloat, to_double, error_power_lanes)
LANES_SUM(lanes_sum_double, double, vdouble, , error_power_lanes)

/* The binary cross-entropy's terms of n probabilities a and labels b (of one
 * kind, float32 'f' or float64) into out, or (out NULL) their sum in double,
 * with a·b + c fused where the processor can: its logarithms' polynomials are
 * faster so (docs/benchmarks.md), and no compensated sum, nor another path's
 * bits, depends on their roundings. */
VECTOR_CLONES_FUSED static double
probabilities_terms(char kind, const void *a, const void *b, void *out, Py_ssize_t n)
{
    if (kind == 'f') {
        return probabilities_floats(a, b, out, n);
    }
    const double *p = a, *y = b;
    if (out == NULL) {
        return lanes_sum_double(p, y, n, PROBABILITIES);
    }
    double *terms = out;
    Py_ssize_t k = 0;
    for (; k + LANES <= n; k += LANES) {
        vdouble u, v;
        memcpy(&u, p + k, sizeof u);
        memcpy(&v, y + k, sizeof v);
        vdouble r = binary_cross_entropy_lanes(u, v);
        memcpy(terms + k, &r, sizeof r);
    }
    for (; k < n; k++) {
        terms[k] = error_power(p[k], y[k], PROBABILITIES);
    }
    return 0.0;
}

VECTOR_CLONES static double
powers_sum(const Buffer *a, const Buffer *b, Py_ssize_t i, Py_ssize_t n, int power)
{
    if (n > 128) {
        Py_ssize_t half = (n / 2) & ~(Py_ssize_t)(LANES - 1);
        return powers_sum(a, b, i, half, power) + powers_sum(a, b, i + half, n - half, power);
    }
    if (power == PROBABILITIES) {
        size_t size = a->kind == 'f' ? sizeof(float) : sizeof(double);
        return probabilities_terms(a->kind, (const char *)a->view.buf + i * size,
                                   (const char *)b->view.buf + i * size, NULL, n);
    }
    /* Each case its own inlined loop, with the tests that never change in it
     * settled at compile time. */
    if (a->kind == 'f') {
        const float *x = (const float *)a->view.buf + i;
        const float *y = b == NULL ? NULL : (const float *)b->view.buf + i;
        if (power == LOGISTIC) {
            return logistic_floats(x, y, NULL, n);
        }
        return y == NULL ? lanes_sum_float(x, NULL, n, 2)
               : power == 2 ? lanes_sum_float(x, y, n, 2)
                            : lanes_sum_float(x, y, n, 1);
    }
    const double *x = (const double *)a->view.buf + i;
    const double *y = b == NULL ? NULL : (const double *)b->view.buf + i;
    return y == NULL ? lanes_sum_double(x, NULL, n, 2)
           : power == 2        ? lanes_sum_double(x, y, n, 2)
           : power == LOGISTIC ? lanes_sum_double(x, y, n, LOGISTIC)
                               : lanes_sum_double(x, y, n, 1);
}

/* The sum of v[0..n), pairwise. */
static double
pairwise_sum(const double *v, Py_ssize_t n)
{
    if (n <= 2) {
        return n == 0 ? 0.0 : n == 1 ? v[0] : v[0] + v[1];
    }
    return pairwise_sum(v, n / 2) + pairwise_sum(v + n / 2, n - n / 2);
}

static int
row_is_zero(const Buffer *b, Py_ssize_t start, Py_ssize_t cols)
{
    for (Py_ssize_t k = start; k < start + cols; k++) {
        if (LOAD(b, k) != 0.0) {
            return 0;
        }
    }
    return 1;
}


/* Each row times 1 / sqrt(its sum of squares), the kind chosen outside the
 * loop. float64 rows: in double, where the two roundings cost at most an ulp
 * more than a division, several times slower. float32 rows: in float
 * vectors twice as wide, by the factor rounded to float (within an ulp),
 * where float holds the factor. */
INLINE void
scale_row_double(const double *x, double *out, Py_ssize_t cols, double inverse)
{
    Py_ssize_t k = 0;
    for (; k + LANES <= cols; k += LANES) {
        vdouble v;
        memcpy(&v, x + k, sizeof v);
        v *= inverse;
        memcpy(out + k, &v, sizeof v);
    }
    for (; k < cols; k++) {
        out[k] = x[k] * inverse;
    }
}

INLINE void
scale_row_float(const float *x, float *out, Py_ssize_t cols, double inverse)
{
    float factor = (float)inverse;
    Py_ssize_t k = 0;
    if (!(inverse >= FLT_MIN && inverse <= FLT_MAX)) {
        /* Rows of subnormals or near the largest float: a factor float cannot
         * hold (or holds only in part) stays in double. */
        for (; k < cols; k++) {
            out[k] = (float)((double)x[k] * inverse);
        }
        return;
    }
    for (; k + 2 * LANES <= cols; k += 2 * LANES) {
        vfloat_wide v;
        memcpy(&v, x + k, sizeof v);
        v *= factor;
        memcpy(out + k, &v, sizeof v);
    }
    for (; k < cols; k++) {
        out[k] = x[k] * factor;
    }
}

/* A row the plain sum cannot serve: one holding ±inf or NaN takes its limit
 * (the generic formula's: NaN anywhere makes it NaN; the infinite entries
 * become ±1 and share the norm, the rest 0); a float64 row whose sum of
 * squares overflowed or lost digits to subnormals is scaled first, exactly,
 * by the power of two that brings its largest entry to [0.5, 1), so that
 * its squares do neither. Scalar: such rows are rare. */
static void
normalize_row_careful(const Buffer *x, const Buffer *out, Py_ssize_t start, Py_ssize_t cols)
{
    double largest = 0.0;
    int nan = 0;
    for (Py_ssize_t k = start; k < start + cols; k++) {
        double v = fabs(LOAD(x, k));
        nan |= v != v;
        largest = v > largest ? v : largest;
    }
    if (nan || isinf(largest)) {
        Py_ssize_t count = 0;
        for (Py_ssize_t k = start; k < start + cols; k++) {
            count += isinf(LOAD(x, k)) ? 1 : 0; /* glibc's isinf is -1 at -inf */
        }
        double share = nan ? NAN : 1.0 / sqrt((double)count);
        for (Py_ssize_t k = start; k < start + cols; k++) {
            double v = LOAD(x, k);
            STORE(out, k, nan ? NAN : isinf(v) ? copysign(share, v) : 0.0);
        }
        return;
    }
    int exponent = 0;
    frexp(largest, &exponent);
    for (Py_ssize_t k = start; k < start + cols; k++) {
        STORE(out, k, ldexp(LOAD(x, k), -exponent));
    }
    double total = powers_sum(out, NULL, start, cols, 2);
    double inverse = total > 0.0 ? 1.0 / sqrt(total) : 1.0; /* a zero row stays zero */
    for (Py_ssize_t k = start; k < start + cols; k++) {
        STORE(out, k, LOAD(out, k) * inverse);
    }
}

/* Rows whose plain sum of squares serves (every float32 row's, which is
 * taken in double) are scaled in vectors; the rest take the careful row. */
/* 1 / sqrt(total) where a row's plain sum of squares serves: positive, finite,
 * and (float64) clear of the subnormals where squares lose digits (`enough`);
 * else 0, a zero row's factor or a careful row's mark. The square root is
 * taken of 1 where it is not wanted, so that a loop of these can compute both
 * sides on vectors (built with -fno-math-errno: no kernel reads errno, and a
 * square root is then one instruction). */
INLINE double
inverse_norm(double total, double enough)
{
    int plain = (total > 0.0) & (total >= enough) & (total <= DBL_MAX); /* no branches */
    double root = sqrt(plain ? total : 1.0);
    return plain ? 1.0 / root : 0.0;
}

INLINE void
normalize_dense(const Buffer *x, const Buffer *out, Py_ssize_t begin, Py_ssize_t end,
                Py_ssize_t cols)
{
    double enough = x->kind == 'd' ? 4.0 * (double)cols * DBL_MIN / DBL_EPSILON : 0.0;
    for (Py_ssize_t r = begin; r < end; r++) {
        Py_ssize_t start = r * cols;
        double total = powers_sum(x, NULL, start, cols, 2);
        double inverse = inverse_norm(total, enough); /* a zero row stays zero, signs kept */
        if (inverse == 0.0 && !(total == 0.0 && row_is_zero(x, start, cols))) {
            normalize_row_careful(x, out, start, cols);
            continue;
        }
        if (x->kind == 'd') {
            scale_row_double((const double *)x->view.buf + start, (double *)out->view.buf + start,
                             cols, inverse);
        }
        else {
            scale_row_float((const float *)x->view.buf + start, (float *)out->view.buf + start,
                            cols, inverse);
        }
    }
}

/* normalize_rows' kernel for rows that run across memory (a transposed
 * matrix's rows: the middle axis of a C-contiguous (blocks, length, width)
 * array), and for short rows, transposed a chunk at a time into scratch:
 * a chunk of up to COLUMN_CHUNK columns at a time, each column a row,
 * computed in vectors across the rows. Each row's sum of squares is taken
 * in powers_sum's order (eight lanes along the row added in lanes_total's
 * tree, then the last few in turn; pairwise above 128 values), and scaled
 * as the rows' kernel scales, so the results are the bits it gives the same
 * row (tests/test_native.py, tests/test_layouts.py). Careful rows are
 * gathered and take the rows' careful path. */
#define COLUMN_CHUNK 64
#define COLUMNS_LONGEST STRETCH

/* The sums of squares of rows start to start + n of each of `lanes` columns
 * `width` apart from `base`, in powers_sum's order. */
static void
column_squares(const Buffer *x, Py_ssize_t base, Py_ssize_t width, Py_ssize_t start,
               Py_ssize_t n, Py_ssize_t lanes, double total[COLUMN_CHUNK])
{
    if (n > 128) {
        Py_ssize_t half = (n / 2) & ~(Py_ssize_t)(LANES - 1);
        double right[COLUMN_CHUNK];
        column_squares(x, base, width, start, half, lanes, total);
        column_squares(x, base, width, start + half, n - half, lanes, right);
        for (Py_ssize_t j = 0; j < lanes; j++) {
            total[j] += right[j];
        }
        return;
    }
    Py_ssize_t whole = n / LANES * LANES;
    for (Py_ssize_t j = 0; j < lanes; j++) {
        total[j] = 0.0;
    }
    if (whole > 0) { /* the row's eight lanes, and lanes_total's tree */
        double acc[LANES][COLUMN_CHUNK];
        for (int i = 0; i < LANES; i++) {
            for (Py_ssize_t j = 0; j < lanes; j++) {
                acc[i][j] = 0.0;
            }
        }
        for (Py_ssize_t k = 0; k < whole; k++) {
            for (Py_ssize_t j = 0; j < lanes; j++) {
                double v = LOAD(x, base + (start + k) * width + j);
                acc[k % LANES][j] += v * v;
            }
        }
        for (Py_ssize_t j = 0; j < lanes; j++) {
            total[j] = ((acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j])) +
                       ((acc[4][j] + acc[5][j]) + (acc[6][j] + acc[7][j]));
        }
    }
    for (Py_ssize_t k = whole; k < n; k++) { /* the last few, in turn */
        for (Py_ssize_t j = 0; j < lanes; j++) {
            double v = LOAD(x, base + (start + k) * width + j);
            total[j] += v * v;
        }
    }
}

/* A careful row of the columns (see normalize_row_careful), through scratch. */
static void
normalize_column_careful(const Buffer *x, const Buffer *out, Py_ssize_t at, Py_ssize_t width,
                         Py_ssize_t length)
{
    double row_in[COLUMNS_LONGEST], row_out[COLUMNS_LONGEST]; /* room for either kind */
    Buffer in = *x, to = *x;
    in.view.buf = row_in;
    to.view.buf = row_out;
    in.n = to.n = length;
    for (Py_ssize_t k = 0; k < length; k++) {
        STORE(&in, k, LOAD(x, at + k * width));
    }
    normalize_row_careful(&in, &to, 0, length);
    for (Py_ssize_t k = 0; k < length; k++) {
        STORE(out, at + k * width, LOAD(&to, k));
    }
}

/* `lanes` columns of `length` rows, `width` apart from `base`, normalized. */
INLINE void
normalize_columns_chunk(const Buffer *x, const Buffer *out, Py_ssize_t base, Py_ssize_t length,
                        Py_ssize_t width, Py_ssize_t lanes)
{
    double enough = x->kind == 'd' ? 4.0 * (double)length * DBL_MIN / DBL_EPSILON : 0.0;
    double total[COLUMN_CHUNK], inverse[COLUMN_CHUNK];
    float factor[COLUMN_CHUNK]; /* float32: as scale_row_float, where float holds it */
    int narrow = 1;
    column_squares(x, base, width, 0, length, lanes, total);
    for (Py_ssize_t j = 0; j < lanes; j++) {
        inverse[j] = inverse_norm(total[j], enough);
    }
    for (Py_ssize_t j = 0; j < lanes; j++) {
        double v = inverse[j];
        int holds = (v == 0.0) | ((v >= FLT_MIN) & (v <= FLT_MAX)); /* 0: zero rows */
        factor[j] = (float)(holds ? v : 1.0);
        narrow &= holds;
    }
    for (Py_ssize_t k = 0; k < length; k++) {
        Py_ssize_t row = base + k * width;
        if (x->kind == 'd') {
            const double *from = (const double *)x->view.buf + row;
            double *to = (double *)out->view.buf + row;
            for (Py_ssize_t j = 0; j < lanes; j++) {
                to[j] = from[j] * inverse[j];
            }
            continue;
        }
        const float *from = (const float *)x->view.buf + row;
        float *to = (float *)out->view.buf + row;
        for (Py_ssize_t j = 0; narrow && j < lanes; j++) {
            to[j] = from[j] * factor[j];
        }
        for (Py_ssize_t j = 0; !narrow && j < lanes; j++) { /* a factor float cannot hold */
            double v = inverse[j];
            to[j] = (v >= FLT_MIN && v <= FLT_MAX) ? from[j] * factor[j]
                                                    : (float)((double)from[j] * v);
        }
    }
    for (Py_ssize_t j = 0; j < lanes; j++) { /* zero rows, and careful ones */
        if (inverse[j] != 0.0) {
            continue;
        }
        int zero = total[j] == 0.0;
        for (Py_ssize_t k = 0; zero && k < length; k++) {
            zero = LOAD(x, base + k * width + j) == 0.0;
        }
        if (!zero) {
            normalize_column_careful(x, out, base + j, width, length);
        }
    }
}

VECTOR_CLONES static void
normalize_columns_range(void *ctx, Py_ssize_t begin, Py_ssize_t end)
{
    ColumnsJob *job = ctx;
    Py_ssize_t length = job->length, width = job->width;
    for (Py_ssize_t item = begin; item < end; item++) {
        Py_ssize_t first = (item % job->chunks) * COLUMN_CHUNK;
        Py_ssize_t lanes = width - first < COLUMN_CHUNK ? width - first : COLUMN_CHUNK;
        normalize_columns_chunk(&job->b[0], &job->b[1], (item / job->chunks) * length * width + first,
                                length, width, lanes);
    }
}

/* Rows this short go through the columns' chunk, transposed into scratch a
 * chunk of rows at a time: in vectors across the rows, where the rows'
 * kernel takes each row's sum, root and division alone. */
#define NORMALIZE_SHORT 8


INLINE void
normalize_short(const Buffer *x, const Buffer *out, Py_ssize_t begin, Py_ssize_t end,
                Py_ssize_t cols)
{
    double rows[NORMALIZE_SHORT * COLUMN_CHUNK], in[NORMALIZE_SHORT * COLUMN_CHUNK],
        result[NORMALIZE_SHORT * COLUMN_CHUNK]; /* room for either kind */
    Buffer across = *x, back = *x;
    across.view.buf = in;
    back.view.buf = result;
    across.dense = back.dense = 1;
    across.n = back.n = cols * COLUMN_CHUNK;
    for (Py_ssize_t r = begin; r < end; r += COLUMN_CHUNK) {
        Py_ssize_t count = end - r < COLUMN_CHUNK ? end - r : COLUMN_CHUNK;
        const void *from = piece(x, r * cols, count * cols, rows).view.buf;
        if (x->kind == 'd') {
            TRANSPOSE(double, from, in, count, cols, cols, COLUMN_CHUNK);
        }
        else {
            TRANSPOSE(float, from, in, count, cols, cols, COLUMN_CHUNK);
        }
        normalize_columns_chunk(&across, &back, 0, cols, COLUMN_CHUNK, count);
        if (x->kind == 'd') {
            TRANSPOSE(double, result, (double *)out->view.buf + r * cols, cols, count,
                      COLUMN_CHUNK, cols);
        }
        else {
            TRANSPOSE(float, result, (float *)out->view.buf + r * cols, cols, count,
                      COLUMN_CHUNK, cols);
        }
    }
}

VECTOR_CLONES static void
normalize_range(void *ctx, Py_ssize_t begin, Py_ssize_t end)
{
    RowsJob *job = ctx;
    const Buffer *x = &job->b[0], *out = &job->b[1];
    Py_ssize_t cols = job->cols;
    if (cols <= NORMALIZE_SHORT) {
        normalize_short(x, out, begin, end, cols);
        return;
    }
    if (x->dense) {
        normalize_dense(x, out, begin, end, cols);
        return;
    }
    double scratch[STRETCH]; /* whole rows gathered, a stretch at a time */
    Py_ssize_t per = STRETCH / cols;
    for (Py_ssize_t r = begin; r < end; r += per) {
        Py_ssize_t count = end - r < per ? end - r : per;
        Buffer rows = piece(x, r * cols, count * cols, scratch);
        Buffer to = piece(out, r * cols, count * cols, NULL);
        normalize_dense(&rows, &to, 0, count, cols);
    }
}

/* normalize_rows(x, out, row_length, threads=1) */
static PyObject *
normalize_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    RowsJob job = {b, 0, 0};
    int threads = 1;
    if (nargs == 4) {
        threads = (int)PyLong_AsLong(args[3]);
        if (threads == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (x, out, row_length[, threads])");
        return NULL;
    }
    int ok = acquire_rows(args, b, 2, 0x2, 0x1, 2, args[2], &job.cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    run(&normalize_range, &job, b[0].n / job.cols, b[0].n, threads, &b[1]);
    release_all(b, 2);
    return Py_NewRef(Py_True);
}

/* normalize_columns(x, out, length, width, threads=1): False where the rows are
 * longer than a stretch (the rows' kernel then takes them, a block at a time). */
static PyObject *
normalize_columns(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    static const Py_ssize_t longest[2] = {COLUMNS_LONGEST, COLUMNS_LONGEST};
    static const Py_ssize_t chunk[2] = {COLUMN_CHUNK, COLUMN_CHUNK};
    static RangeFn const fns[2] = {&normalize_columns_range, &normalize_columns_range};
    return columns_entry(args, nargs, longest, chunk, fns, 0);
}

/* ---- losses ------------------------------------------------------------ */


typedef struct {
    Buffer *b; /* yhat, y, and out for the elements */
    int power;
    double *sums; /* one per stretch, for the sum */
} LossJob;

VECTOR_CLONES static void
loss_sum_range(void *ctx, Py_ssize_t begin, Py_ssize_t end)
{
    LossJob *job = ctx;
    double left[STRETCH], right[STRETCH]; /* strided inputs, gathered a stretch at a time */
    for (Py_ssize_t s = begin; s < end; s++) {
        Py_ssize_t i = s * STRETCH, n = i + STRETCH < job->b[0].n ? STRETCH : job->b[0].n - i;
        Buffer a = piece(&job->b[0], i, n, left), b = piece(&job->b[1], i, n, right);
        job->sums[s] = powers_sum(&a, &b, 0, n, job->power);
    }
}

VECTOR_CLONES static void
loss_elements_range(void *ctx, Py_ssize_t begin, Py_ssize_t end)
{
    LossJob *job = ctx;
    double left[STRETCH], right[STRETCH];
    Py_ssize_t stop = end * STRETCH < job->b[0].n ? end * STRETCH : job->b[0].n;
    for (Py_ssize_t i = begin * STRETCH; i < stop; i += STRETCH) {
        Py_ssize_t n = stop - i < STRETCH ? stop - i : STRETCH, k = 0;
        Buffer a = piece(&job->b[0], i, n, left), b = piece(&job->b[1], i, n, right);
        Buffer out = piece(&job->b[2], i, n, NULL);
        if (job->power == LOGISTIC && a.kind == 'f') {
            logistic_floats(a.view.buf, b.view.buf, out.view.buf, n);
            continue;
        }
        if (job->power == PROBABILITIES) {
            probabilities_terms(a.kind, a.view.buf, b.view.buf, out.view.buf, n);
            continue;
        }
        for (; k + LANES <= n; k += LANES) {
            store_lanes(&out, k, error_power_lanes(load_lanes(&a, k), load_lanes(&b, k), job->power));
        }
        for (; k < n; k++) {
            STORE(&out, k, error_power(LOAD(&a, k), LOAD(&b, k), job->power));
        }
    }
}

/* The trailing arguments: power, then threads (1 if left out). */
static int
loss_options(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t fixed, int *power, int *threads)
{
    if (nargs != fixed + 1 && nargs != fixed + 2) {
        PyErr_SetString(PyExc_TypeError, fixed == 2 ? "expected (yhat, y, power[, threads])"
                                                    : "expected (yhat, y, out, power[, threads])");
        return 0;
    }
    long chosen = PyLong_AsLong(args[fixed]);
    *power = chosen == 2 || chosen == LOGISTIC || chosen == PROBABILITIES ? (int)chosen : 1;
    *threads = nargs == fixed + 2 ? (int)PyLong_AsLong(args[fixed + 1]) : 1;
    return !PyErr_Occurred();
}

/* loss_sum(yhat, y, power, threads=1) -> the sum of |yhat - y|**power as a
 * float (inf or NaN where a term is), or None when not served. */
static PyObject *
loss_sum(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    LossJob job = {b, 1, NULL};
    int threads;
    if (!loss_options(args, nargs, 2, &job.power, &threads)) {
        return NULL;
    }
    if (!acquire_all(args, b, 2, 0x0, 0x3, 2)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t stretches = (b[0].n + STRETCH - 1) / STRETCH;
    double one, total;
    job.sums = stretches > 1 ? PyMem_RawMalloc(stretches * sizeof(double)) : &one;
    if (job.sums == NULL) {
        release_all(b, 2);
        return PyErr_NoMemory();
    }
    run(&loss_sum_range, &job, stretches, b[0].n, threads, NULL);
    total = pairwise_sum(job.sums, stretches);
    if (job.sums != &one) {
        PyMem_RawFree(job.sums);
    }
    release_all(b, 2);
    return PyFloat_FromDouble(total);
}

/* loss_elements(yhat, y, out, power, threads=1): out = |yhat - y|**power. */
static PyObject *
loss_elements(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[3];
    LossJob job = {b, 1, NULL};
    int threads;
    if (!loss_options(args, nargs, 3, &job.power, &threads)) {
        return NULL;
    }
    if (!acquire_all(args, b, 3, 0x4, 0x3, 3)) {
        Py_RETURN_FALSE;
    }
    run(&loss_elements_range, &job, (b[0].n + STRETCH - 1) / STRETCH, b[0].n, threads, &b[2]);
    release_all(b, 3);
    Py_RETURN_TRUE;
}

/* Whether every value of n floats lies in [0, 1] (none NaN): the
 * probabilities' check (_compiled.within_unit_interval), one pass where
 * their extremes take two. A vector's test is one comparison, v·(1 − v) >= 0
 * (as BINARY_CROSS_ENTROPY_SPECIALS's), and a lane that fails stays failed. */
#define WITHIN_UNIT(NAME, T, VT, COUNT, GE, SELECT)                                       \
    VECTOR_CLONES static int NAME(const T *x, Py_ssize_t n)                                \
    {                                                                                      \
        VT v, zero = {0}, one = zero + 1, failed = zero;                                   \
        Py_ssize_t k = 0;                                                                  \
        for (; k + COUNT <= n; k += COUNT) {                                               \
            memcpy(&v, x + k, sizeof v);                                                   \
            failed = SELECT(GE(v * (one - v), zero), failed, one);                         \
        }                                                                                  \
        for (int lane = 0; lane < COUNT; lane++) {                                         \
            if (failed[lane] != 0) {                                                       \
                return 0;                                                                  \
            }                                                                              \
        }                                                                                  \
        for (; k < n; k++) {                                                               \
            if (!(x[k] * (1 - x[k]) >= 0)) {                                               \
                return 0;                                                                  \
            }                                                                              \
        }                                                                                  \
        return 1;                                                                          \
    }
WITHIN_UNIT(within_unit_float, float, vfloat_wide, WIDE, wide_ge, select_wide)
WITHIN_UNIT(within_unit_double, double, vdouble, LANES, lanes_ge, select_lanes)

/* A pass over one float32 or float64 array read as it is (C-contiguous):
 * *result = pass(x, kind, n), the GIL released where the pass takes long. 1
 * on success, 0 where the array is not read, -1 with an exception set. */
typedef double (*ArrayPass)(const void *x, char kind, Py_ssize_t n);

static int
array_pass(PyObject *const *args, Py_ssize_t nargs, ArrayPass pass, double *result)
{
    Buffer b;
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "expected (x)");
        return -1;
    }
    if (!acquire(args[0], &b, 0, 0)) {
        return 0;
    }
    if (b.n < 4096) { /* as run(): the GIL is kept where the pass takes less */
        *result = pass(b.view.buf, b.kind, b.n);
    }
    else {
        Py_BEGIN_ALLOW_THREADS
        *result = pass(b.view.buf, b.kind, b.n);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&b.view);
    return 1;
}

static double
within_unit_pass(const void *x, char kind, Py_ssize_t n)
{
    return kind == 'f' ? within_unit_float(x, n) : within_unit_double(x, n);
}

/* within_unit(x) -> whether every value of x is in [0, 1] (none NaN), or None
 * when x is not served. */
static PyObject *
within_unit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    double inside;
    int ok = array_pass(args, nargs, within_unit_pass, &inside);
    return ok < 0 ? NULL : ok == 0 ? Py_NewRef(Py_None) : PyBool_FromLong(inside != 0.0);
}

/* The sum of n floats in compensated double lanes (add_compensated: TwoSum in
 * each), the last partial vector padded with zeros, totalled as
 * compensated_total totals: within about a rounding of the exact sum for
 * terms of one sign, in one order whatever array they came from. A term that
 * is inf or NaN makes it NaN (TwoSum's error of inf): the caller sums those
 * plainly. */
#define COMPENSATED_SUM(NAME, T, VT, WIDEN)                                                \
    VECTOR_CLONES static double NAME(const T *x, Py_ssize_t n)                             \
    {                                                                                      \
        vdouble acc = {0}, comp = {0};                                                     \
        VT v;                                                                              \
        Py_ssize_t k = 0;                                                                  \
        for (; k + LANES <= n; k += LANES) {                                               \
            memcpy(&v, x + k, sizeof v);                                                   \
            add_compensated(&acc, &comp, WIDEN(v));                                        \
        }                                                                                  \
        if (k < n) {                                                                       \
            v = (VT){0};                                                                   \
            memcpy(&v, x + k, (size_t)(n - k) * sizeof(T));                                \
            add_compensated(&acc, &comp, WIDEN(v));                                        \
        }                                                                                  \
        return compensated_total(acc, comp);                                               \
    }
COMPENSATED_SUM(compensated_sum_float, float, vfloat, to_double)
COMPENSATED_SUM(compensated_sum_double, double, vdouble, )

static double
compensated_sum_pass(const void *x, char kind, Py_ssize_t n)
{
    return kind == 'f' ? compensated_sum_float(x, n) : compensated_sum_double(x, n);
}

/* compensated_sum(x) -> the sum of a C-contiguous float32 or float64 array as a
 * float (COMPENSATED_SUM), or None where x is not read. */
static PyObject *
compensated_sum(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    double total;
    int ok = array_pass(args, nargs, compensated_sum_pass, &total);
    return ok < 0 ? NULL : ok == 0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(total);
}

/* Whether Python has a signal to handle (Ctrl-C): the loops below run
 * without the GIL, for as many steps as the caller asks, and look every
 * SIGNAL_CHECK_STEPS steps, taking the GIL back for the look. */
#define SIGNAL_CHECK_STEPS (1LL << 16)

typedef struct {
    PyThreadState *saved; /* this thread's state while the GIL is released */
} Released;

static int
signalled(Released *released)
{
    PyEval_RestoreThread(released->saved);
    int failed = PyErr_CheckSignals();
    released->saved = PyEval_SaveThread();
    return failed;
}

/* The line's Adagrad loop (arraykit/_adagrad.py, _line_adagrad_floats), in
 * the data's own precision: every operation of the Python loop, in its order,
 * rounded to float or double. The hyperparameters arrive as doubles and are
 * rounded to the precision once, as an array library rounds a Python number
 * it combines with an array of that dtype. Records the iterates at t = 0,
 * every, 2·every, ..., then the last; past a non-finite iterate (checked
 * every `check` steps) the rest are NaN. Returns -1 where a signal handler
 * raised (the Python error is set), else 0. */
#define LINE_ADAGRAD(NAME, T, SQRT)                                                          \
    static int NAME(const T *m, const T *start, long long steps, long long every,           \
                    double lr, double eps, double initial, double decay, double penalty,    \
                    long long check, T *out, Released *released)                            \
    {                                                                                       \
        const T mean_x = m[0], var_x = m[1], b_opt = m[2], w_opt = m[3];                    \
        const T h00 = (T)2.0, h01 = (T)2.0 * mean_x, h11 = (T)2.0 * (var_x + mean_x * mean_x); \
        const T r0 = (T)-2.0 * m[4], r1 = (T)-2.0 * m[5];                                   \
        const T e = (T)eps, pen = (T)penalty;                                               \
        T b = start[0], w = start[1], s0 = (T)initial, s1 = (T)initial;                     \
        long long records = steps / every + 1, written = 0, taken;                           \
        out[0] = b;                                                                         \
        out[1] = w;                                                                         \
        written = 1;                                                                        \
        for (taken = 1; taken <= steps; taken++) {                                          \
            T d0 = b - b_opt, d1 = w - w_opt;                                               \
            T g0 = r0 + (h00 * d0 + h01 * d1);                                              \
            T g1 = r1 + (h01 * d0 + h11 * d1);                                              \
            if (penalty != 0.0) {                                                           \
                g0 = g0 + pen * b;                                                          \
                g1 = g1 + pen * w;                                                          \
            }                                                                               \
            T clr = (T)(decay == 0.0 ? lr : lr / (1.0 + (double)(taken - 1) * decay));      \
            s0 = s0 + g0 * g0;                                                              \
            s1 = s1 + g1 * g1;                                                              \
            T std0 = SQRT(s0) + e, std1 = SQRT(s1) + e;                                     \
            b = b + -clr * (g0 / (std0 > 0 ? std0 : (T)1.0));                               \
            w = w + -clr * (g1 / (std1 > 0 ? std1 : (T)1.0));                               \
            if (taken % every == 0) {                                                       \
                out[2 * written] = b;                                                       \
                out[2 * written + 1] = w;                                                   \
                written++;                                                                  \
            }                                                                               \
            if (taken % check == 0 && !(isfinite(b) && isfinite(w))) {                      \
                b = w = (T)NAN;                                                             \
                break;                                                                      \
            }                                                                               \
            if (taken % SIGNAL_CHECK_STEPS == 0 && signalled(released)) {                   \
                return -1;                                                                  \
            }                                                                               \
        }                                                                                   \
        for (; written < records; written++) {                                              \
            out[2 * written] = out[2 * written + 1] = (T)NAN;                               \
        }                                                                                   \
        out[2 * records] = b;                                                               \
        out[2 * records + 1] = w;                                                           \
        return 0;                                                                           \
    }

LINE_ADAGRAD(line_adagrad_f, float, sqrtf)
LINE_ADAGRAD(line_adagrad_d, double, sqrt)

/* line_adagrad(moments, start, out, steps, every, lr, eps, initial, decay,
 * penalty, check) -> bool: moments (6,), start (2,) and out
 * (steps // every + 2, 2) of one float type. */
static PyObject *
line_adagrad(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[3];
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError,
                        "expected (moments, start, out, steps, every, lr, eps, initial, decay, "
                        "penalty, check)");
        return NULL;
    }
    long long steps = PyLong_AsLongLong(args[3]), every = PyLong_AsLongLong(args[4]);
    long long check = PyLong_AsLongLong(args[10]);
    double lr = PyFloat_AsDouble(args[5]), eps = PyFloat_AsDouble(args[6]);
    double initial = PyFloat_AsDouble(args[7]), decay = PyFloat_AsDouble(args[8]);
    double penalty = PyFloat_AsDouble(args[9]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        if (acquire(args[i], &b[i], i == 2, 0) != 1) {
            release_all(b, i);
            Py_RETURN_FALSE;
        }
    }
    if (steps < 0 || every < 1 || check < 1 || b[0].n != 6 || b[1].n != 2
        || b[2].n != 2 * (steps / every + 2) || b[1].kind != b[0].kind
        || b[2].kind != b[0].kind) {
        release_all(b, 3);
        Py_RETURN_FALSE;
    }
    Released released = {PyEval_SaveThread()};
    int failed;
    if (b[0].kind == 'f') {
        failed = line_adagrad_f(b[0].view.buf, b[1].view.buf, steps, every, lr, eps, initial,
                                decay, penalty, check, b[2].view.buf, &released);
    }
    else {
        failed = line_adagrad_d(b[0].view.buf, b[1].view.buf, steps, every, lr, eps, initial,
                                decay, penalty, check, b[2].view.buf, &released);
    }
    PyEval_RestoreThread(released.saved);
    release_all(b, 3);
    if (failed) {
        return NULL; /* the signal handler's exception: KeyboardInterrupt for Ctrl-C */
    }
    Py_RETURN_TRUE;
}

static PyObject *
share_threads(PyObject *self, PyObject *arg)
{
#if HAVE_POOL && !defined(_WIN32)
    if (arg == Py_None) {
        team_parallel = NULL;
        Py_RETURN_FALSE;
    }
    const char *path = PyUnicode_AsUTF8(arg);
    if (path == NULL) {
        return NULL;
    }
    /* Only a library already loaded (by torch), never a new one; the lookup
     * goes through its dependencies, where the runtime it uses is. */
    void *library = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
    TeamFn team = library != NULL ? (TeamFn)dlsym(library, "GOMP_parallel") : NULL;
    team_parallel = team;
    return PyBool_FromLong(team != NULL);
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"share_threads", share_threads, METH_O,
     "share_threads(library) -> bool: run threaded work in the OpenMP runtime that the loaded"
     " library uses (None: arraykit's own pool)."},
    {"sigmoid", (PyCFunction)(void (*)(void))sigmoid, METH_FASTCALL,
     "sigmoid(x, out, threads=1) -> bool: out = 1 / (1 + exp(-x))."},
    {"sigmoid_derivative", (PyCFunction)(void (*)(void))sigmoid_derivative, METH_FASTCALL,
     "sigmoid_derivative(x, out, threads=1) -> bool: out = e / (1 + e)**2 with e = exp(-|x|)."},
    {"softplus", (PyCFunction)(void (*)(void))softplus, METH_FASTCALL,
     "softplus(x, out, threads=1) -> bool: out = max(x, 0) + log1p(exp(-|x|))."},
    {"log_sigmoid", (PyCFunction)(void (*)(void))log_sigmoid, METH_FASTCALL,
     "log_sigmoid(x, out, threads=1) -> bool: out = min(x, 0) - log1p(exp(-|x|))."},
    {"softmax_rows", (PyCFunction)(void (*)(void))softmax_rows, METH_FASTCALL,
     "softmax_rows(x, out, row_length, threads=1) -> bool: softmax over consecutive rows."},
    {"softmax_columns", (PyCFunction)(void (*)(void))softmax_columns, METH_FASTCALL,
     "softmax_columns(x, out, length, width, threads=1) -> bool: softmax over the middle axis"
     " of (blocks, length, width), for axes shorter than a vector."},
    {"log_softmax_columns", (PyCFunction)(void (*)(void))log_softmax_columns, METH_FASTCALL,
     "log_softmax_columns(x, out, length, width, threads=1) -> bool: log-softmax over the"
     " middle axis of (blocks, length, width), for an axis of at most 512."},
    {"logsumexp_columns", (PyCFunction)(void (*)(void))logsumexp_columns, METH_FASTCALL,
     "logsumexp_columns(x, out, length, width, threads=1) -> bool: logsumexp over the"
     " middle axis of (blocks, length, width) into out of (blocks, width)."},
    {"log_softmax_rows", (PyCFunction)(void (*)(void))log_softmax_rows, METH_FASTCALL,
     "log_softmax_rows(x, out, row_length, threads=1) -> bool: log-softmax over consecutive"
     " rows."},
    {"logsumexp_rows", (PyCFunction)(void (*)(void))logsumexp_rows, METH_FASTCALL,
     "logsumexp_rows(x, out, row_length, threads=1) -> bool: out[i] = log(sum(exp(row i)))."},
    {"cross_entropy_rows", (PyCFunction)(void (*)(void))cross_entropy_rows, METH_FASTCALL,
     "cross_entropy_rows(x, labels, losses, row_length, threads=1) -> bool: losses[i] ="
     " -log_softmax(row i)[labels[i]]."},
    {"normalize_rows", (PyCFunction)(void (*)(void))normalize_rows, METH_FASTCALL,
     "normalize_rows(x, out, row_length, threads=1) -> bool: each row over its Euclidean norm."},
    {"normalize_columns", (PyCFunction)(void (*)(void))normalize_columns, METH_FASTCALL,
     "normalize_columns(x, out, length, width, threads=1) -> bool: normalize over the "
     "middle axis."},
    {"loss_sum", (PyCFunction)(void (*)(void))loss_sum, METH_FASTCALL,
     "loss_sum(yhat, y, power, threads=1) -> float | None: sum of |yhat - y|**power (power 3:"
     " of the logistic loss of logits yhat and labels y; 4: the binary cross-entropy of"
     " probabilities yhat)."},
    {"compensated_sum", (PyCFunction)(void (*)(void))compensated_sum, METH_FASTCALL,
     "compensated_sum(x) -> float | None: the sum of x in compensated double lanes (NaN where a"
     " term is inf or NaN)."},
    {"within_unit", (PyCFunction)(void (*)(void))within_unit, METH_FASTCALL,
     "within_unit(x) -> bool | None: whether every value of x is in [0, 1] (none NaN)."},
    {"loss_elements", (PyCFunction)(void (*)(void))loss_elements, METH_FASTCALL,
     "loss_elements(yhat, y, out, power, threads=1) -> bool: out = |yhat - y|**power (power 3:"
     " the logistic loss of logits yhat and labels y; 4: the binary cross-entropy of"
     " probabilities yhat)."},
    {"line_adagrad", (PyCFunction)(void (*)(void))line_adagrad, METH_FASTCALL,
     "line_adagrad(moments, start, out, steps, every, lr, eps, initial, decay, penalty, check)"
     " -> bool: Adagrad on the line, in the arrays' precision."},
    {NULL, NULL, 0, NULL},
};

/* The module's name: _kernels, or that of a build for one instruction level
 * (pyproject.toml builds _kernels_avx2 too; arraykit/_native/__init__.py
 * chooses at import). */
#ifndef ARRAYKIT_MODULE
#define ARRAYKIT_MODULE _kernels
#endif
#define NAME_STRING(name) #name
#define NAME_OF(name) NAME_STRING(name)
#define INIT_FUNCTION(name) INIT_FUNCTION_OF(name)
#define INIT_FUNCTION_OF(name) PyInit_##name

/* The widest of the levels the builds name that this processor (and its
 * system) runs: "x86-64-v4" (AVX-512), "x86-64-v3" (AVX2), "x86-64"; ""
 * elsewhere. */
static const char *
processor_level(void)
{
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    __builtin_cpu_init();
    /* (every processor with these has the rest of x86-64-v3; clang 14 knows no f16c) */
    int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi2");
    int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512cd");
    return v4 ? "x86-64-v4" : v3 ? "x86-64-v3" : "x86-64";
#else
    return "";
#endif
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    NAME_OF(ARRAYKIT_MODULE),
    "Compiled kernels for NumPy arrays and torch CPU tensors (see arraykit/_native/_compiled.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
INIT_FUNCTION(ARRAYKIT_MODULE)(void)
{
#if HAVE_POOL
    static int registered = 0;
    if (!registered && pthread_atfork(NULL, NULL, pool_forget) == 0) {
        registered = 1;
    }
#endif
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && (PyModule_AddStringConstant(m, "INSTRUCTIONS", INSTRUCTIONS) < 0 ||
                      PyModule_AddStringConstant(m, "PROCESSOR", processor_level()) < 0 ||
                      PyModule_AddIntConstant(m, "COLUMNS_LONGEST", COLUMNS_LONGEST) < 0 ||
                      PyModule_AddIntConstant(m, "THREADS", HAVE_POOL) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
