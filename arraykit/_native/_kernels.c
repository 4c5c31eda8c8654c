/*
 * Compiled kernels for small NumPy arrays.
 *
 * On a few hundred elements a NumPy ufunc call costs 0.2-0.4 us of dispatch
 * whatever it computes, and the careful formulas take several calls where
 * the textbook takes one or two; here each primitive is one call that reads
 * its input once. Large arrays stay with the NumPy kernels, whose vectorised
 * exp is several times faster than the C library's scalar one; for them,
 * softmax_shift and softmax_scale do the passes around NumPy's exp.
 *
 * Every function takes C-contiguous buffers of one native float type ('f' or
 * 'd') and returns False (or None) when it cannot serve them, or when a
 * special value needs the generic formulas: the caller then discards what
 * was written and takes the NumPy path. float32 is computed in double and
 * rounded once.
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

static inline double
sigmoid_derivative1(double v)
{
    double e = exp(-fabs(v));
    double d = 1.0 + e;
    double r = e / (d * d);
    return r > 0.25 ? 0.25 : r; /* the roundings near 0 may pass the maximum */
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

static PyObject *
sigmoid_derivative(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return elementwise(args, nargs, sigmoid_derivative1);
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

static PyObject *
normalize_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    Py_ssize_t cols;
    int ok = rows_args(args, nargs, b, &cols);
    if (ok <= 0) {
        return ok < 0 ? NULL : Py_NewRef(Py_False);
    }
    Py_ssize_t rows = b[0].n / cols;
    /* Below this a float64 sum of squares may have lost digits to
     * subnormals. float32 squares are exact in double and cannot overflow. */
    double enough = 4.0 * (double)cols * DBL_MIN / DBL_EPSILON;
    for (Py_ssize_t r = 0; r < rows; r++) {
        Py_ssize_t start = r * cols;
        Sum squares = {0.0, 0.0};
        double largest = 0.0;
        for (Py_ssize_t i = start; i < start + cols; i++) {
            double v = LOAD(&b[0], i);
            sum_add(&squares, v * v);
            largest = fabs(v) > largest ? fabs(v) : largest;
        }
        double total = sum_value(&squares);
        if (!isfinite(largest) || largest != largest) {
            release_all(b, 2); /* inf or NaN: the generic formulas */
            Py_RETURN_FALSE;
        }
        double scale = 1.0;
        if (largest == 0.0) {
            total = 1.0; /* a zero row stays zero (and keeps its signs) */
        }
        else if (b[0].kind == 'd' && !(isfinite(total) && total >= enough)) {
            /* Scale by the power of two bringing the largest entry to
             * [0.5, 1) (exactly), and sum again. */
            int exponent;
            frexp(largest, &exponent);
            /* Capped so that the scale is a normal number: a subnormal
             * row lands near 2^-52, still exact. */
            exponent = exponent > DBL_MAX_EXP - 2 ? DBL_MAX_EXP - 2 : exponent;
            exponent = exponent < DBL_MIN_EXP - 2 ? DBL_MIN_EXP - 2 : exponent;
            scale = ldexp(1.0, -exponent);
            Sum again = {0.0, 0.0};
            for (Py_ssize_t i = start; i < start + cols; i++) {
                double v = LOAD(&b[0], i) * scale;
                sum_add(&again, v * v);
            }
            total = sum_value(&again);
        }
        double norm = sqrt(total);
        for (Py_ssize_t i = start; i < start + cols; i++) {
            STORE(&b[1], i, LOAD(&b[0], i) * scale / norm);
        }
    }
    release_all(b, 2);
    Py_RETURN_TRUE;
}

/* ---- losses ------------------------------------------------------------ */

static inline double
error_power(double a, double b, int power)
{
    double d = fabs(a - b);
    return power == 2 ? d * d : d;
}

/* loss_sum(yhat, y, power) -> the sum of |yhat - y|**power as a float
 * (compensated, in double), or None when not served. */
static PyObject *
loss_sum(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (yhat, y, power)");
        return NULL;
    }
    int power = PyLong_AsLong(args[2]) == 2 ? 2 : 1;
    if (PyErr_Occurred() || !acquire_all(args, b, 2, 0x0, 2)) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    Sum total = {0.0, 0.0};
    for (Py_ssize_t i = 0; i < b[0].n; i++) {
        sum_add(&total, error_power(LOAD(&b[0], i), LOAD(&b[1], i), power));
    }
    release_all(b, 2);
    /* An inf term makes the compensation NaN: report the plain sum then. */
    return PyFloat_FromDouble(isfinite(total.sum) ? sum_value(&total) : total.sum);
}

/* loss_elements(yhat, y, out, power): out = |yhat - y|**power, elementwise. */
static PyObject *
loss_elements(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[3];
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "expected (yhat, y, out, power)");
        return NULL;
    }
    int power = PyLong_AsLong(args[3]) == 2 ? 2 : 1;
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!acquire_all(args, b, 3, 0x4, 3)) {
        Py_RETURN_FALSE;
    }
    for (Py_ssize_t i = 0; i < b[0].n; i++) {
        STORE(&b[2], i, error_power(LOAD(&b[0], i), LOAD(&b[1], i), power));
    }
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
     "sigmoid_derivative(x, out) -> bool: out = e / (1 + e)**2 with e = exp(-|x|)."},
    {"softmax_rows", (PyCFunction)(void (*)(void))softmax_rows, METH_FASTCALL,
     "softmax_rows(x, out, row_length) -> bool: softmax over consecutive rows."},
    {"softmax_shift", (PyCFunction)(void (*)(void))softmax_shift, METH_FASTCALL,
     "softmax_shift(x, shifted, error, row_length) -> bool: x - max and its rounding error."},
    {"softmax_scale", (PyCFunction)(void (*)(void))softmax_scale, METH_FASTCALL,
     "softmax_scale(exp_shifted, error, out, row_length) -> bool: corrected, over row sums."},
    {"normalize_rows", (PyCFunction)(void (*)(void))normalize_rows, METH_FASTCALL,
     "normalize_rows(x, out, row_length) -> bool: each row over its Euclidean norm."},
    {"loss_sum", (PyCFunction)(void (*)(void))loss_sum, METH_FASTCALL,
     "loss_sum(yhat, y, power) -> float | None: sum of |yhat - y|**power."},
    {"loss_elements", (PyCFunction)(void (*)(void))loss_elements, METH_FASTCALL,
     "loss_elements(yhat, y, out, power) -> bool: out = |yhat - y|**power."},
    {"line_adagrad", (PyCFunction)(void (*)(void))line_adagrad, METH_FASTCALL,
     "line_adagrad(moments, start, out, steps, every, lr, eps, initial, decay, penalty, check)"
     " -> bool: Adagrad on the line, in the arrays' precision."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_kernels",
    "Compiled kernels for small NumPy arrays (see arraykit/_native/numpy.py).",
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
    return PyModule_Create(&module);
}
