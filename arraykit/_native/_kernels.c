/*
 * Compiled kernels for NumPy arrays and torch's CPU tensors.
 *
 * Small arrays: on a few hundred elements a NumPy ufunc call costs 0.2-0.4 us
 * of dispatch whatever it computes, and the careful formulas take several
 * calls where the textbook takes one or two; here each primitive is one call
 * that reads its input once. softmax_shift and softmax_scale do the passes
 * around NumPy's exp for large arrays.
 *
 * sigmoid_derivative, normalize_rows and the losses serve every size: their
 * loops run eight doubles at a time (compiled for the processor's widest
 * vectors), with an exp of their own, and split large arrays over threads
 * where the caller asks for them (torch does, with its thread count; NumPy
 * arrays get one, as NumPy's own functions).
 *
 * Every function takes C-contiguous buffers of one native float type ('f' or
 * 'd') and returns False (or None) when it cannot serve them, or when a
 * special value needs the generic formulas: the caller then discards what
 * was written and takes the NumPy path. float32 is computed in double and
 * rounded once, except where a comment says otherwise.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
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
} Buffer;

/* 1 on success; 0 (no exception set) when obj is not a C-contiguous buffer of
 * native float32/float64; -1 only for a failed release. */
static int
acquire(PyObject *obj, Buffer *b, int writable)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) {
        PyErr_Clear();
        return 0;
    }
    const char *f = b->view.format;
    if (f != NULL && (f[0] == '@' || f[0] == '=')) {
        f++;
    }
    if (f == NULL || (strcmp(f, "d") != 0 && strcmp(f, "f") != 0)) {
        PyBuffer_Release(&b->view);
        return 0;
    }
    b->kind = f[0];
    b->n = b->view.len / b->view.itemsize;
    return 1;
}

/* Acquire `count` buffers of one length: those before `first_scratch` of
 * one float kind (the caller's arrays), those from it on float64 scratch,
 * which may be None (pointer NULL). Bit i of `writable` marks an output.
 * 1 on success, 0 (everything released) when the buffers cannot be served. */
static int
acquire_all(PyObject *const *objs, Buffer *bufs, int count, int writable, int first_scratch)
{
    int got = 0;
    for (; got < count; got++) {
        Buffer *b = &bufs[got];
        if (got >= first_scratch && objs[got] == Py_None) {
            b->view.buf = NULL;
            b->view.obj = NULL;
            b->n = bufs[0].n;
            b->kind = 'd';
            continue;
        }
        if (!acquire(objs[got], b, (writable >> got) & 1)) {
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
acquire_rows(PyObject *const *objs, Buffer *bufs, int count, int writable, int first_scratch,
             PyObject *length, Py_ssize_t *cols)
{
    *cols = PyLong_AsSsize_t(length);
    if (*cols == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*cols <= 0 || !acquire_all(objs, bufs, count, writable, first_scratch)) {
        return 0;
    }
    if (bufs[0].n % *cols != 0) {
        release_all(bufs, count);
        return 0;
    }
    return 1;
}

#define LOAD(b, i) ((b)->kind == 'd' ? ((const double *)(b)->view.buf)[i] \
                                     : (double)((const float *)(b)->view.buf)[i])
#define STORE(b, i, v) ((b)->kind == 'd' ? (void)(((double *)(b)->view.buf)[i] = (v)) \
                                         : (void)(((float *)(b)->view.buf)[i] = (float)(v)))

/* Neumaier's compensated sum: the running error is carried, so a sum of n
 * terms is accurate to a couple of ulps instead of n/2. */
typedef struct {
    double sum, err;
} Sum;

static inline void
sum_add(Sum *s, double v)
{
    double t = s->sum + v;
    if (fabs(s->sum) >= fabs(v)) {
        s->err += (s->sum - t) + v;
    }
    else {
        s->err += (v - t) + s->sum;
    }
    s->sum = t;
}

static inline double
sum_value(const Sum *s)
{
    return s->sum + s->err;
}

/* ---- vectors and threads ------------------------------------------------ */

/* Eight doubles at a time, written with the compiler's vector extensions:
 * each loop below is compiled for AVX-512 and AVX2 beside the baseline, and
 * the processor's best is chosen when the module loads. Elsewhere the same
 * code compiles to whatever vectors the target has (or to scalars). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif
#define INLINE static inline __attribute__((always_inline))
#if defined(__GNUC__) && !defined(__clang__)
/* Vectors wider than the baseline's registers pass between inlined helpers
 * only: the note on their calling convention does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#define LANES 8
typedef double vdouble __attribute__((vector_size(8 * LANES)));
typedef float vfloat __attribute__((vector_size(4 * LANES)));
typedef long long vlong __attribute__((vector_size(8 * LANES)));

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
    return __builtin_convertvector(v, vdouble);
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
 * POSIX threads, runs on the calling thread alone. Called without the GIL. */
typedef void (*RangeFn)(void *ctx, Py_ssize_t begin, Py_ssize_t end);

#define MAX_THREADS 64

#if defined(_WIN32) || !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L || defined(__STDC_NO_ATOMICS__)
#define HAVE_POOL 0
#else
#define HAVE_POOL 1
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

/* A forked child has none of the workers (nor, possibly, free locks). */
static void
pool_forget(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    pool.job = fresh;
    pool.lock = fresh;
    pool.wake = cond;
    pool.workers = 0;
}

static void
parallel(RangeFn fn, void *ctx, Py_ssize_t items, int threads)
{
    threads = threads > MAX_THREADS ? MAX_THREADS : threads;
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
    int parts = pool.workers + 1 < threads ? pool.workers + 1 : threads;
    parts = items < parts ? (int)items : parts;
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
    fn(ctx, 0, items);
}
#endif

/* Elementwise work is split in stretches of this many elements; the losses
 * sum each on its own and add the sums pairwise, so that a total does not
 * depend on how many threads took them. */
#define STRETCH 4096

/* Threads worth using for `elements` elements: one per 2^15 (torch's own
 * grain), at most `threads`. */
static int
threads_for(Py_ssize_t elements, int threads)
{
    Py_ssize_t useful = elements >> 15;
    return useful < threads ? (int)(useful > 0 ? useful : 1) : threads;
}

INLINE double
error_power(double a, double b, int power)
{
    double d = fabs(a - b);
    return power == 2 ? d * d : d;
}

INLINE vdouble
error_power_lanes(vdouble a, vdouble b, int power)
{
    vdouble d = a - b;
    if (power == 2) {
        return d * d;
    }
    return (vdouble)((vlong)d & ((vlong){0} + 0x7fffffffffffffffLL)); /* |d| */
}

/* ---- elementwise ------------------------------------------------------- */

static inline double
sigmoid1(double v)
{
    /* exp of -|v| never overflows, and e / (1 + e) keeps the negative tail
     * (subnormal results included) to full relative accuracy. */
    if (v >= 0) {
        return 1.0 / (1.0 + exp(-v));
    }
    double e = exp(v);
    return e / (1.0 + e); /* NaN falls through here and stays NaN */
}

static PyObject *
elementwise(PyObject *const *args, Py_ssize_t nargs, double (*f)(double))
{
    Buffer b[2];
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (x, out)");
        return NULL;
    }
    if (!acquire_all(args, b, 2, 0x2, 2)) {
        Py_RETURN_FALSE;
    }
    if (b[0].kind == 'd') {
        const double *x = b[0].view.buf;
        double *out = b[1].view.buf;
        for (Py_ssize_t i = 0; i < b[0].n; i++) {
            out[i] = f(x[i]);
        }
    }
    else {
        const float *x = b[0].view.buf;
        float *out = b[1].view.buf;
        for (Py_ssize_t i = 0; i < b[0].n; i++) {
            out[i] = (float)f((double)x[i]);
        }
    }
    release_all(b, 2);
    Py_RETURN_TRUE;
}

static PyObject *
sigmoid(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return elementwise(args, nargs, sigmoid1);
}

/* exp(s) for s <= 0 (or NaN), eight at a time: Cody and Waite's reduction
 * s = n ln2 + r, |r| <= ln2/2, with ln2 in two parts (n ln2_hi is exact);
 * exp(r) by a polynomial interpolating it at Chebyshev nodes (degree 11:
 * within 5e-18, so the result is within an ulp; degree 6 for results that
 * are rounded to float32: within 3e-9); 2^n from exponent bits, in two
 * factors, so that subnormal results are rounded once. */
#define EXP_SHIFTER 0x1.8p52 /* adding it rounds to an integer, kept in the low bits */

INLINE vdouble
select_lanes(vlong mask, vdouble a, vdouble b)
{
    return (vdouble)(((vlong)a & mask) | ((vlong)b & ~mask));
}

INLINE vdouble
power_of_two(vdouble n) /* n integral, in [-1022, 1023] */
{
    vdouble k = n + EXP_SHIFTER;
    vdouble shifter = (vdouble){0} + EXP_SHIFTER;
    return (vdouble)(((vlong)k - (vlong)shifter + 1023) << 52);
}

INLINE vdouble
exp_nonpositive(vdouble s, int single)
{
    vdouble floor = (vdouble){0} - 746.0; /* exp below it rounds to 0 */
    s = select_lanes(s < floor, floor, s);
    vdouble n = (s * 0x1.71547652b82fep0 + EXP_SHIFTER) - EXP_SHIFTER;
    vdouble hi = s - n * 0x1.62e42fee00000p-1, lo = n * 0x1.a39ef35793c76p-33;
    vdouble r = hi - lo, q;
    if (single) {
        q = (vdouble){0} + 0x1.6d7531eae5468p-10;
        q = q * r + 0x1.126fa6fd6e815p-7;
        q = q * r + 0x1.5554ace120b86p-5;
        q = q * r + 0x1.5554043e289bcp-3;
        q = q * r + 0x1.00000028794dfp-1;
        q = 1.0 + r * (q * r + 0x1.000000a1fd6a7p+0);
    }
    else {
        q = (vdouble){0} + 0x1.af631d0059becp-26;
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
    }
    vdouble least = (vdouble){0} - 1022.0;
    vdouble a = select_lanes(n > least, n, least);
    return q * power_of_two(a) * power_of_two(n - a);
}

/* e / (1 + e)^2 with e = exp(-|x|) <= 1, clamped at its maximum 1/4. */
INLINE vdouble
sigmoid_derivative_lanes(vdouble v, int single)
{
    vdouble magnitude = (vdouble)((vlong)v & ((vlong){0} + 0x7fffffffffffffffLL));
    vdouble e = exp_nonpositive(-magnitude, single);
    vdouble d = 1.0 + e, r = e / (d * d), quarter = (vdouble){0} + 0.25;
    return select_lanes(r > quarter, quarter, r);
}

typedef struct {
    Buffer *b; /* x, out */
} ElementsJob;

VECTOR_CLONES static void
sigmoid_derivative_range(void *ctx, Py_ssize_t begin, Py_ssize_t end)
{
    ElementsJob *job = ctx;
    const Buffer *x = &job->b[0], *out = &job->b[1];
    int single = x->kind == 'f';
    Py_ssize_t i = begin * STRETCH, stop = end * STRETCH < x->n ? end * STRETCH : x->n;
    for (; i + LANES <= stop; i += LANES) {
        vdouble v = load_lanes(x, i);
        store_lanes(out, i, single ? sigmoid_derivative_lanes(v, 1) : sigmoid_derivative_lanes(v, 0));
    }
    if (i < stop) { /* the last few, in lanes padded with zeros */
        double part[LANES] = {0};
        vdouble v;
        for (Py_ssize_t k = 0; k < stop - i; k++) {
            part[k] = LOAD(x, i + k);
        }
        memcpy(&v, part, sizeof v);
        v = single ? sigmoid_derivative_lanes(v, 1) : sigmoid_derivative_lanes(v, 0);
        for (Py_ssize_t k = 0; k < stop - i; k++) {
            STORE(out, i + k, v[k]);
        }
    }
}

/* sigmoid_derivative(x, out, threads=1) */
static PyObject *
sigmoid_derivative(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    ElementsJob job = {b};
    int threads = nargs == 3 ? (int)PyLong_AsLong(args[2]) : 1;
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (x, out[, threads])");
        return NULL;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!acquire_all(args, b, 2, 0x2, 2)) {
        Py_RETURN_FALSE;
    }
    Py_BEGIN_ALLOW_THREADS
    parallel(sigmoid_derivative_range, &job, (b[0].n + STRETCH - 1) / STRETCH,
             threads_for(b[0].n, threads));
    Py_END_ALLOW_THREADS
    release_all(b, 2);
    Py_RETURN_TRUE;
}

/* ---- rows -------------------------------------------------------------- */

/* Check (x, out, row_length) and acquire both buffers, as acquire_rows. */
static int
rows_args(PyObject *const *args, Py_ssize_t nargs, Buffer *b, Py_ssize_t *cols)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (x, out, row_length)");
        return -1;
    }
    return acquire_rows(args, b, 2, 0x2, 2, args[2], cols);
}

/* The exact rounding error of d = v - m (Knuth's TwoSum). */
static inline double
difference_error(double v, double m, double d)
{
    double back = d - v;
    return (v - (d - back)) + (-m - back);
}

/* exp(x - m) with the rounding error of x - m carried in (TwoSum): without
 * it, the relative error of a small result grows like |x - m| ulps. */
static inline double
shifted_exp(double v, double m)
{
    double s = v - m;
    if (s < -746.0) {
        return 0.0; /* exp underflows to 0; also where v - m overflowed */
    }
    double e = exp(s);
    return e + e * difference_error(v, m, s);
}

/* Largest and smallest entry of a row, in four lanes (a single chain of
 * compares costs its latency on every element); NaN is reported apart. */
#define ROW_RANGE(T)                                                              \
    static void row_range_scalar_##T(const T *x, Py_ssize_t n, double *hi,       \
                                     double *lo, int *nan)                        \
    {                                                                             \
        T mx[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};                   \
        T mn[4] = {INFINITY, INFINITY, INFINITY, INFINITY};                       \
        int bad = 0;                                                              \
        Py_ssize_t i = 0;                                                         \
        for (; i + 4 <= n; i += 4) {                                              \
            for (int k = 0; k < 4; k++) {                                         \
                T v = x[i + k];                                                   \
                bad |= v != v;                                                    \
                mx[k] = v > mx[k] ? v : mx[k];                                    \
                mn[k] = v < mn[k] ? v : mn[k];                                    \
            }                                                                     \
        }                                                                         \
        for (; i < n; i++) {                                                      \
            bad |= x[i] != x[i];                                                  \
            mx[0] = x[i] > mx[0] ? x[i] : mx[0];                                  \
            mn[0] = x[i] < mn[0] ? x[i] : mn[0];                                  \
        }                                                                         \
        *hi = fmax(fmax(mx[0], mx[1]), fmax(mx[2], mx[3]));                       \
        *lo = fmin(fmin(mn[0], mn[1]), fmin(mn[2], mn[3]));                       \
        *nan = bad;                                                               \
    }
ROW_RANGE(float)
ROW_RANGE(double)

#if defined(__SSE2__)
#include <emmintrin.h>
/* The same in SSE2 registers (every x86-64 processor has them; compilers do
 * not vectorise the loops above, for the NaN test), two vectors per step.
 * max/min return their second operand when the first is NaN, so NaN never
 * wins; the unordered compare reports it. The tail goes to the scalar loop. */
#define ROW_RANGE_SSE2(T, V, W, sfx, load)                                        \
    static void row_range_##T(const T *x, Py_ssize_t n, double *hi, double *lo,  \
                              int *nan)                                           \
    {                                                                             \
        V mx0 = _mm_set1_##sfx(-INFINITY), mx1 = mx0;                            \
        V mn0 = _mm_set1_##sfx(INFINITY), mn1 = mn0;                             \
        V bad = _mm_setzero_##sfx();                                              \
        Py_ssize_t i = 0;                                                         \
        for (; i + 2 * W <= n; i += 2 * W) {                                      \
            V a = load(x + i), b = load(x + i + W);                               \
            bad = _mm_or_##sfx(bad, _mm_cmpunord_##sfx(a, b));                    \
            mx0 = _mm_max_##sfx(a, mx0);                                          \
            mx1 = _mm_max_##sfx(b, mx1);                                          \
            mn0 = _mm_min_##sfx(a, mn0);                                          \
            mn1 = _mm_min_##sfx(b, mn1);                                          \
        }                                                                         \
        T h[W], l[W];                                                             \
        _mm_storeu_##sfx(h, _mm_max_##sfx(mx0, mx1));                             \
        _mm_storeu_##sfx(l, _mm_min_##sfx(mn0, mn1));                             \
        row_range_scalar_##T(x + i, n - i, hi, lo, nan);                          \
        for (int k = 0; k < W; k++) {                                             \
            *hi = fmax(*hi, h[k]);                                                \
            *lo = fmin(*lo, l[k]);                                                \
        }                                                                         \
        *nan |= _mm_movemask_##sfx(bad) != 0;                                     \
    }
ROW_RANGE_SSE2(float, __m128, 4, ps, _mm_loadu_ps)
ROW_RANGE_SSE2(double, __m128d, 2, pd, _mm_loadu_pd)
#else
#define row_range_float row_range_scalar_float
#define row_range_double row_range_scalar_double
#endif

/* The range of row `start` of b, whichever its float kind. */
static void
row_range(const Buffer *b, Py_ssize_t start, Py_ssize_t cols, double *hi, double *lo, int *nan)
{
    if (b->kind == 'd') {
        row_range_double((const double *)b->view.buf + start, cols, hi, lo, nan);
    }
    else {
        row_range_float((const float *)b->view.buf + start, cols, hi, lo, nan);
    }
}

static PyObject *
softmax_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    Py_ssize_t cols;
    int ok = rows_args(args, nargs, b, &cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    Py_ssize_t rows = b[0].n / cols;
    /* The exponentials are kept in double until divided by their sum: in
     * out itself for float64, in a row of scratch for float32 (whose
     * differences are exact in double, so need no TwoSum). */
    double *scratch = NULL;
    if (b[0].kind == 'f' && (scratch = PyMem_Malloc(cols * sizeof(double))) == NULL) {
        release_all(b, 2);
        return PyErr_NoMemory();
    }
    int served = 1;
    for (Py_ssize_t r = 0; r < rows && served; r++) {
        Py_ssize_t start = r * cols;
        double m, lo;
        int nan;
        row_range(&b[0], start, cols, &m, &lo, &nan);
        if (nan || !isfinite(m)) {
            served = 0; /* NaN, +inf or an all -inf row: the generic formulas */
            break;
        }
        Sum total = {0.0, 0.0};
        if (scratch != NULL) {
            const float *x = (const float *)b[0].view.buf + start;
            for (Py_ssize_t i = 0; i < cols; i++) {
                scratch[i] = exp((double)x[i] - m);
                sum_add(&total, scratch[i]);
            }
            double t = sum_value(&total);
            float *out = (float *)b[1].view.buf + start;
            for (Py_ssize_t i = 0; i < cols; i++) {
                out[i] = (float)(scratch[i] / t);
            }
        }
        else {
            const double *x = (const double *)b[0].view.buf + start;
            double *out = (double *)b[1].view.buf + start;
            for (Py_ssize_t i = 0; i < cols; i++) {
                out[i] = shifted_exp(x[i], m);
                sum_add(&total, out[i]);
            }
            double t = sum_value(&total);
            for (Py_ssize_t i = 0; i < cols; i++) {
                out[i] /= t;
            }
        }
    }
    PyMem_Free(scratch);
    release_all(b, 2);
    return Py_NewRef(served ? Py_True : Py_False);
}

/* For large arrays, the softmax of a block of rows in three steps around
 * NumPy's vectorised exp: softmax_shift writes s = x - m (in double) and, for
 * float64, the exact rounding error of that difference (float32 differences
 * are exact in double); the caller takes exp(s) in place; softmax_scale
 * divides each e + e*err by its row's sum, rounding once to x's dtype. */

static PyObject *
softmax_shift(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[3];
    Py_ssize_t cols;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "expected (x, shifted, error, row_length)");
        return NULL;
    }
    int ok = acquire_rows(args, b, 3, 0x6, 1, args[3], &cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    int wide = b[0].kind == 'f';
    int served = wide || b[2].view.buf != NULL; /* float64 needs the error buffer */
    double *s = b[1].view.buf, *err = b[2].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t start = 0; served && start < b[0].n; start += cols) {
        double m, lo;
        int nan;
        row_range(&b[0], start, cols, &m, &lo, &nan);
        if (nan || !isfinite(m)) {
            served = 0; /* NaN, +inf or an all -inf row: the generic formulas */
            break;
        }
        if (wide) {
            const float *x = (const float *)b[0].view.buf + start;
            for (Py_ssize_t i = 0; i < cols; i++) {
                s[start + i] = (double)x[i] - m; /* exact */
            }
            continue;
        }
        const double *x = (const double *)b[0].view.buf + start;
        double *sr = s + start, *er = err + start;
        if (isfinite(m - lo)) {
            for (Py_ssize_t i = 0; i < cols; i++) {
                double d = x[i] - m;
                er[i] = difference_error(x[i], m, d);
                sr[i] = d;
            }
            continue;
        }
        for (Py_ssize_t i = 0; i < cols; i++) {
            double d = x[i] - m;
            /* An overflowed difference (-inf) has exp 0: no correction. */
            er[i] = isfinite(d) ? difference_error(x[i], m, d) : 0.0;
            sr[i] = d;
        }
    }
    Py_END_ALLOW_THREADS
    release_all(b, 3);
    return Py_NewRef(served ? Py_True : Py_False);
}

/* Sum of e[i] * (1 + err[i]) for float64 results: eight compensated lanes
 * (TwoSum, no branches) per stretch of 128, pairwise above that. */
static double
corrected_sum(const double *e, const double *err, Py_ssize_t n)
{
    if (n > 128) {
        Py_ssize_t half = (n / 2) & ~(Py_ssize_t)7;
        return corrected_sum(e, err, half) + corrected_sum(e + half, err + half, n - half);
    }
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, comp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++) {
            double v = e[i + k] + e[i + k] * err[i + k];
            double t = acc[k] + v, back = t - acc[k];
            comp[k] += (acc[k] - (t - back)) + (v - back);
            acc[k] = t;
        }
    }
    Sum total = {0.0, 0.0};
    for (int k = 0; k < 8; k++) {
        sum_add(&total, acc[k]);
        sum_add(&total, comp[k]);
    }
    for (; i < n; i++) {
        sum_add(&total, e[i] + e[i] * err[i]);
    }
    return sum_value(&total);
}

/* Sum of e[i] for float32 results, in eight plain lanes per stretch of 128,
 * pairwise above that. The terms are positive, so nothing cancels: the
 * relative error stays below (24 + log2 n) double roundings, under 2^-46 for
 * any row that fits in memory, where float32 needs 2^-24. */
static double
lane_sum(const double *e, Py_ssize_t n)
{
    if (n > 128) {
        Py_ssize_t half = (n / 2) & ~(Py_ssize_t)7;
        return lane_sum(e, half) + lane_sum(e + half, n - half);
    }
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++) {
            acc[k] += e[i + k];
        }
    }
    double total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) {
        total += e[i];
    }
    return total;
}

static PyObject *
softmax_scale(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[3];
    Py_ssize_t cols;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "expected (exp_shifted, error, out, row_length)");
        return NULL;
    }
    /* out (the third) may be float32; the first two are float64 scratch. */
    PyObject *const order[3] = {args[2], args[0], args[1]};
    int ok = acquire_rows(order, b, 3, 0x1, 1, args[3], &cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    const double *e = b[1].view.buf, *err = b[2].view.buf;
    if ((b[0].kind == 'd') != (err != NULL)) {
        release_all(b, 3); /* float64 comes with its error terms, float32 without */
        Py_RETURN_FALSE;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t start = 0; start < b[0].n; start += cols) {
        if (err != NULL) {
            double total = corrected_sum(e + start, err + start, cols);
            double *out = (double *)b[0].view.buf;
            for (Py_ssize_t i = start; i < start + cols; i++) {
                out[i] = (e[i] + e[i] * err[i]) / total;
            }
            continue;
        }
        /* A multiply instead of a division (several times its cost): the two
         * roundings in double move the float32 result by at most 2^-28 ulp. */
        double inverse = 1.0 / lane_sum(e + start, cols);
        float *out = (float *)b[0].view.buf;
        for (Py_ssize_t i = start; i < start + cols; i++) {
            out[i] = (float)(e[i] * inverse);
        }
    }
    Py_END_ALLOW_THREADS
    release_all(b, 3);
    Py_RETURN_TRUE;
}

/* Sum of |a - b|**power over n entries from i (b NULL: of |a|**power), in
 * eight lanes per stretch of 128 and pairwise above that: at most
 * (19 + log2 n) roundings on the way to any term, and vectorised. float32
 * differences and their squares are exact in double, and cannot overflow. */
#define LANES_SUM(NAME, T, VT, TERM)                                                       \
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
            acc += TERM(__builtin_convertvector(u, vdouble), __builtin_convertvector(v, vdouble), \
                        power);                                                            \
        }                                                                                  \
        double total = lanes_total(acc);                                                   \
        for (; k < n; k++) {                                                               \
            total += error_power(a[k], b != NULL ? b[k] : 0.0, power);                     \
        }                                                                                  \
        return total;                                                                      \
    }
LANES_SUM(lanes_sum_float, float, vfloat, error_power_lanes)
LANES_SUM(lanes_sum_double, double, vdouble, error_power_lanes)

VECTOR_CLONES static double
powers_sum(const Buffer *a, const Buffer *b, Py_ssize_t i, Py_ssize_t n, int power)
{
    if (n > 128) {
        Py_ssize_t half = (n / 2) & ~(Py_ssize_t)(LANES - 1);
        return powers_sum(a, b, i, half, power) + powers_sum(a, b, i + half, n - half, power);
    }
    /* Each case its own inlined loop, with the tests that never change in it
     * settled at compile time. */
    if (a->kind == 'f') {
        const float *x = (const float *)a->view.buf + i;
        const float *y = b == NULL ? NULL : (const float *)b->view.buf + i;
        return y == NULL ? lanes_sum_float(x, NULL, n, 2)
               : power == 2 ? lanes_sum_float(x, y, n, 2) : lanes_sum_float(x, y, n, 1);
    }
    const double *x = (const double *)a->view.buf + i;
    const double *y = b == NULL ? NULL : (const double *)b->view.buf + i;
    return y == NULL ? lanes_sum_double(x, NULL, n, 2)
           : power == 2 ? lanes_sum_double(x, y, n, 2) : lanes_sum_double(x, y, n, 1);
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

typedef struct {
    Buffer *b; /* x, out */
    Py_ssize_t cols;
    atomic_int failed; /* a row the caller's generic formula must take */
} RowsJob;

/* Each row times 1 / sqrt(its sum of squares), the kind chosen outside the
 * loop. float64 rows: in double, where the two roundings cost at most an ulp
 * more than a division, several times slower. float32 rows: in float
 * vectors twice as wide, by the factor rounded to float (within an ulp),
 * where float holds the factor. */
typedef float vfloat_wide __attribute__((vector_size(8 * LANES)));

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

/* Rows the plain sum cannot serve (inf, NaN, float64 sums that overflowed or
 * lost digits to subnormals) fail the job: the caller takes the careful path
 * for the whole array. */
VECTOR_CLONES static void
normalize_range(void *ctx, Py_ssize_t begin, Py_ssize_t end)
{
    RowsJob *job = ctx;
    const Buffer *x = &job->b[0], *out = &job->b[1];
    Py_ssize_t cols = job->cols;
    double enough = x->kind == 'd' ? 4.0 * (double)cols * DBL_MIN / DBL_EPSILON : 0.0;
    for (Py_ssize_t r = begin; r < end; r++) {
        Py_ssize_t start = r * cols;
        double total = powers_sum(x, NULL, start, cols, 2);
        double inverse = 0.0; /* a zero row stays zero, signs kept */
        if (total > 0.0 && total >= enough && total <= DBL_MAX) {
            inverse = 1.0 / sqrt(total);
        }
        else if (!(total == 0.0 && row_is_zero(x, start, cols))) {
            atomic_store(&job->failed, 1);
            return;
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
    int ok = acquire_rows(args, b, 2, 0x2, 2, args[2], &job.cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    Py_BEGIN_ALLOW_THREADS
    parallel(normalize_range, &job, b[0].n / job.cols, threads_for(b[0].n, threads));
    Py_END_ALLOW_THREADS
    release_all(b, 2);
    return Py_NewRef(atomic_load(&job.failed) ? Py_False : Py_True);
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
    const Buffer *a = &job->b[0], *b = &job->b[1];
    for (Py_ssize_t s = begin; s < end; s++) {
        Py_ssize_t i = s * STRETCH, n = i + STRETCH < a->n ? STRETCH : a->n - i;
        job->sums[s] = powers_sum(a, b, i, n, job->power);
    }
}

VECTOR_CLONES static void
loss_elements_range(void *ctx, Py_ssize_t begin, Py_ssize_t end)
{
    LossJob *job = ctx;
    const Buffer *a = &job->b[0], *b = &job->b[1], *out = &job->b[2];
    Py_ssize_t i = begin * STRETCH, stop = end * STRETCH < a->n ? end * STRETCH : a->n;
    for (; i + LANES <= stop; i += LANES) {
        store_lanes(out, i, error_power_lanes(load_lanes(a, i), load_lanes(b, i), job->power));
    }
    for (; i < stop; i++) {
        STORE(out, i, error_power(LOAD(a, i), LOAD(b, i), job->power));
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
    *power = PyLong_AsLong(args[fixed]) == 2 ? 2 : 1;
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
    if (!acquire_all(args, b, 2, 0x0, 2)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t stretches = (b[0].n + STRETCH - 1) / STRETCH;
    double one, total;
    job.sums = stretches > 1 ? PyMem_RawMalloc(stretches * sizeof(double)) : &one;
    if (job.sums == NULL) {
        release_all(b, 2);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    parallel(loss_sum_range, &job, stretches, threads_for(b[0].n, threads));
    Py_END_ALLOW_THREADS
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
    if (!acquire_all(args, b, 3, 0x4, 3)) {
        Py_RETURN_FALSE;
    }
    Py_BEGIN_ALLOW_THREADS
    parallel(loss_elements_range, &job, (b[0].n + STRETCH - 1) / STRETCH,
             threads_for(b[0].n, threads));
    Py_END_ALLOW_THREADS
    release_all(b, 3);
    Py_RETURN_TRUE;
}

/* The line's Adagrad loop (arraykit/_adagrad.py, _line_adagrad_floats), in
 * the data's own precision: every operation of the Python loop, in its order,
 * rounded to float or double. The hyperparameters arrive as doubles and are
 * rounded to the precision once, as an array library rounds a Python number
 * it combines with an array of that dtype. Records the iterates at t = 0,
 * every, 2·every, ..., then the last; past a non-finite iterate (checked
 * every `check` steps) the rest are NaN. */
#define LINE_ADAGRAD(NAME, T, SQRT)                                                          \
    static void NAME(const T *m, const T *start, long long steps, long long every,          \
                     double lr, double eps, double initial, double decay, double penalty,   \
                     long long check, T *out)                                               \
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
        }                                                                                   \
        for (; written < records; written++) {                                              \
            out[2 * written] = out[2 * written + 1] = (T)NAN;                               \
        }                                                                                   \
        out[2 * records] = b;                                                               \
        out[2 * records + 1] = w;                                                           \
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
        if (acquire(args[i], &b[i], i == 2) != 1) {
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
    Py_BEGIN_ALLOW_THREADS
    if (b[0].kind == 'f') {
        line_adagrad_f(b[0].view.buf, b[1].view.buf, steps, every, lr, eps, initial, decay,
                       penalty, check, b[2].view.buf);
    }
    else {
        line_adagrad_d(b[0].view.buf, b[1].view.buf, steps, every, lr, eps, initial, decay,
                       penalty, check, b[2].view.buf);
    }
    Py_END_ALLOW_THREADS
    release_all(b, 3);
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"sigmoid", (PyCFunction)(void (*)(void))sigmoid, METH_FASTCALL,
     "sigmoid(x, out) -> bool: out = 1 / (1 + exp(-x))."},
    {"sigmoid_derivative", (PyCFunction)(void (*)(void))sigmoid_derivative, METH_FASTCALL,
     "sigmoid_derivative(x, out, threads=1) -> bool: out = e / (1 + e)**2 with e = exp(-|x|)."},
    {"softmax_rows", (PyCFunction)(void (*)(void))softmax_rows, METH_FASTCALL,
     "softmax_rows(x, out, row_length) -> bool: softmax over consecutive rows."},
    {"softmax_shift", (PyCFunction)(void (*)(void))softmax_shift, METH_FASTCALL,
     "softmax_shift(x, shifted, error, row_length) -> bool: x - max and its rounding error."},
    {"softmax_scale", (PyCFunction)(void (*)(void))softmax_scale, METH_FASTCALL,
     "softmax_scale(exp_shifted, error, out, row_length) -> bool: corrected, over row sums."},
    {"normalize_rows", (PyCFunction)(void (*)(void))normalize_rows, METH_FASTCALL,
     "normalize_rows(x, out, row_length, threads=1) -> bool: each row over its Euclidean norm."},
    {"loss_sum", (PyCFunction)(void (*)(void))loss_sum, METH_FASTCALL,
     "loss_sum(yhat, y, power, threads=1) -> float | None: sum of |yhat - y|**power."},
    {"loss_elements", (PyCFunction)(void (*)(void))loss_elements, METH_FASTCALL,
     "loss_elements(yhat, y, out, power, threads=1) -> bool: out = |yhat - y|**power."},
    {"line_adagrad", (PyCFunction)(void (*)(void))line_adagrad, METH_FASTCALL,
     "line_adagrad(moments, start, out, steps, every, lr, eps, initial, decay, penalty, check)"
     " -> bool: Adagrad on the line, in the arrays' precision."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_kernels",
    "Compiled kernels for NumPy arrays and torch CPU tensors (see arraykit/_native/numpy.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
#if HAVE_POOL
    static int registered = 0;
    if (!registered && pthread_atfork(NULL, NULL, pool_forget) == 0) {
        registered = 1;
    }
#endif
    return PyModule_Create(&module);
}
