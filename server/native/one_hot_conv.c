/* A convolution over one-hot label maps, computed as the table lookup it is.
 *
 * The generator's first convolution reads T one-hot maps of C classes (T*C input channels) with a KxK kernel.
 * For a one-hot input, every multiply is by 0 or 1, so each output pixel is the sum of T*K*K weight vectors
 * picked by the class IDs under the kernel:
 *
 *     out[b, :, y, x] = bias + sum over t, ky, kx of table[t, ky, kx, label[b, t, y', x'], :]
 *
 * where (y', x') is (y + ky - K/2, x + kx - K/2) reflected at the borders (ReflectionPad2d). That is T*K*K
 * vector additions per pixel instead of T*C*K*K multiply-adds. Class IDs >= C select the table's zero row, as
 * an all-zero one-hot column would.
 *
 * one_hot_conv(labels, table, bias, out, batch, frames, height, width, classes, kernel, channels, label_bytes,
 *              threads)
 *   labels  C-contiguous uint8 or uint16 [batch, frames, height, width]
 *   table   C-contiguous float32 [frames, kernel, kernel, classes + 1, channels] (row `classes` all zero)
 *   bias    C-contiguous float32 [channels]
 *   out     writable C-contiguous float32 [batch, channels, height, width]
 * The Python side (neurender.server.onehot_lookup) checks every shape and dtype before calling.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const void *labels;
    const int32_t *planes; /* [batch * frames][height][width + 2 * pad] classes, clamped, columns reflected */
    const float *table;    /* 64-byte aligned copy of the caller's table */
    const float *bias;
    float *out;
    int batch, frames, height, width, classes, kernel, channels, label_bytes;
    int first_row, last_row; /* rows of the flattened (batch * height) range this worker computes */
    int failed;
} Job;

static int reflect(int i, int n) {
    if (i < 0) return -i;
    if (i >= n) return 2 * (n - 1) - i;
    return i;
}

/* Every label row with its columns reflected by K/2 on each side and its classes clamped to `classes` (the
 * table's zero row), so the row kernels index the table without bounds checks. */
static void fill_planes(const Job *job, int32_t *planes) {
    const int pad = job->kernel / 2, w = job->width, padded = w + 2 * pad;
    const size_t rows = (size_t)job->batch * job->frames * job->height;
    for (size_t row = 0; row < rows; ++row) {
        int32_t *dst = planes + row * padded;
        for (int x = -pad; x < w + pad; ++x) {
            const size_t src = row * w + reflect(x, w);
            const int c = job->label_bytes == 1 ? ((const uint8_t *)job->labels)[src] : ((const uint16_t *)job->labels)[src];
            dst[x + pad] = c < job->classes ? c : job->classes;
        }
    }
}

typedef float vec8 __attribute__((vector_size(32), aligned(4)));  /* 8 floats, unaligned loads allowed */
typedef float vec16 __attribute__((vector_size(64), aligned(4))); /* 16: one AVX-512 register, two AVX2 ones */

/* One output row, tap row by tap row: the table slice of one (frame, ky) pair (K * (classes + 1) rows of
 * channels) stays in L1 while every pixel of the row adds its K picks into the row's accumulators, PIX pixels
 * at a time so the additions form independent dependency chains. `acc` is [width][channels], pre-filled with
 * the bias by the caller. */
#define DEFINE_ROW_KERNEL(NAME, VEC, LANES, NV, PIX)                                                          \
    __attribute__((target_clones("avx512f", "avx2", "default"))) static void NAME(                            \
        const Job *job, const float *table, const int32_t *const *rows, float *acc) {                         \
        const int k = job->kernel, taps = job->frames * k, w = job->width;                                    \
        const size_t tap_stride = (size_t)(job->classes + 1) * NV * LANES;                                    \
        for (int r = 0; r < taps; ++r) {                                                                      \
            const float *slice = table + (size_t)r * k * tap_stride;                                          \
            int x = 0;                                                                                        \
            for (; x + PIX <= w; x += PIX) {                                                                  \
                const int32_t *row = rows[r] + x;                                                             \
                VEC sum[PIX][NV];                                                                             \
                for (int p = 0; p < PIX; ++p)                                                                 \
                    for (int v = 0; v < NV; ++v) sum[p][v] = ((const VEC *)(acc + (size_t)(x + p) * NV * LANES))[v]; \
                const float *tap = slice;                                                                     \
                for (int kx = 0; kx < k; ++kx, tap += tap_stride)                                             \
                    for (int p = 0; p < PIX; ++p) {                                                           \
                        const VEC *picked = (const VEC *)(tap + (size_t)row[kx + p] * NV * LANES);            \
                        for (int v = 0; v < NV; ++v) sum[p][v] += picked[v];                                  \
                    }                                                                                         \
                for (int p = 0; p < PIX; ++p)                                                                 \
                    for (int v = 0; v < NV; ++v) ((VEC *)(acc + (size_t)(x + p) * NV * LANES))[v] = sum[p][v]; \
            }                                                                                                 \
            for (; x < w; ++x) {                                                                              \
                VEC *dst = (VEC *)(acc + (size_t)x * NV * LANES);                                             \
                const float *tap = slice;                                                                     \
                for (int kx = 0; kx < k; ++kx, tap += tap_stride) {                                           \
                    const VEC *picked = (const VEC *)(tap + (size_t)rows[r][x + kx] * NV * LANES);            \
                    for (int v = 0; v < NV; ++v) dst[v] += picked[v];                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }

DEFINE_ROW_KERNEL(row_kernel_8, vec8, 8, 1, 4)
DEFINE_ROW_KERNEL(row_kernel_16, vec16, 16, 1, 4)
DEFINE_ROW_KERNEL(row_kernel_32, vec16, 16, 2, 2)
DEFINE_ROW_KERNEL(row_kernel_64, vec16, 16, 4, 1)
DEFINE_ROW_KERNEL(row_kernel_128, vec16, 16, 8, 1)

/* Any other channel count: plain loops. */
static void row_kernel_any(const Job *job, const float *table, const int32_t *const *rows, float *acc) {
    const int k = job->kernel, taps = job->frames * k, w = job->width, channels = job->channels;
    const size_t tap_stride = (size_t)(job->classes + 1) * channels;
    for (int r = 0; r < taps; ++r)
        for (int x = 0; x < w; ++x)
            for (int kx = 0; kx < k; ++kx) {
                const float *picked = table + ((size_t)r * k + kx) * tap_stride + (size_t)rows[r][x + kx] * channels;
                for (int o = 0; o < channels; ++o) acc[(size_t)x * channels + o] += picked[o];
            }
}

static void *run_rows(void *arg) {
    Job *job = (Job *)arg;
    const int k = job->kernel, pad = k / 2, taps = job->frames * k, w = job->width, h = job->height;
    const int channels = job->channels, padded = w + 2 * pad;
    const int32_t **rows = malloc(sizeof(int32_t *) * (size_t)taps);
    float *acc = aligned_alloc(64, (sizeof(float) * (size_t)channels * w + 63) / 64 * 64);
    if (!rows || !acc) {
        job->failed = 1;
        free(rows); free(acc);
        return NULL;
    }
    for (int flat = job->first_row; flat < job->last_row; ++flat) {
        const int b = flat / h, y = flat % h;
        for (int t = 0; t < job->frames; ++t)
            for (int ky = 0; ky < k; ++ky)
                rows[t * k + ky] = job->planes + (((size_t)b * job->frames + t) * h + reflect(y + ky - pad, h)) * padded;
        for (int x = 0; x < w; ++x) memcpy(acc + (size_t)x * channels, job->bias, sizeof(float) * channels);
        switch (channels) {
            case 8: row_kernel_8(job, job->table, rows, acc); break;
            case 16: row_kernel_16(job, job->table, rows, acc); break;
            case 32: row_kernel_32(job, job->table, rows, acc); break;
            case 64: row_kernel_64(job, job->table, rows, acc); break;
            case 128: row_kernel_128(job, job->table, rows, acc); break;
            default: row_kernel_any(job, job->table, rows, acc); break;
        }
        float *dst = job->out + (size_t)b * channels * h * w + (size_t)y * w;
        for (int o = 0; o < channels; ++o, dst += (size_t)h * w)
            for (int x = 0; x < w; ++x) dst[x] = acc[(size_t)x * channels + o];
    }
    free(rows); free(acc);
    return NULL;
}

static int run_threads(Job *base, int threads) {
    const int total = base->batch * base->height;
    if (threads < 1) threads = 1;
    if (threads > total) threads = total;
    Job jobs[64];
    pthread_t ids[64];
    int started[64] = {0};
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; ++i) {
        jobs[i] = *base;
        jobs[i].first_row = (int)((long long)total * i / threads);
        jobs[i].last_row = (int)((long long)total * (i + 1) / threads);
    }
    for (int i = 1; i < threads; ++i) started[i] = pthread_create(&ids[i], NULL, run_rows, &jobs[i]) == 0;
    run_rows(&jobs[0]);
    int failed = jobs[0].failed;
    for (int i = 1; i < threads; ++i) {
        if (started[i]) {
            pthread_join(ids[i], NULL);
            failed |= jobs[i].failed;
        } else {
            run_rows(&jobs[i]); /* no thread could be started: do its rows here */
            failed |= jobs[i].failed;
        }
    }
    return failed;
}

static PyObject *one_hot_conv(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer labels, table, bias, out;
    Job job = {0};
    int threads;
    if (!PyArg_ParseTuple(args, "y*y*y*w*iiiiiiiii", &labels, &table, &bias, &out, &job.batch, &job.frames,
                          &job.height, &job.width, &job.classes, &job.kernel, &job.channels, &job.label_bytes,
                          &threads))
        return NULL;
    const size_t pixels = (size_t)job.batch * job.height * job.width;
    const size_t table_floats = (size_t)job.frames * job.kernel * job.kernel * (job.classes + 1) * job.channels;
    const char *problem = NULL;
    if (job.label_bytes != 1 && job.label_bytes != 2) problem = "label_bytes must be 1 or 2";
    else if (job.kernel < 1 || job.kernel % 2 == 0) problem = "kernel must be odd";
    else if (job.height <= job.kernel / 2 || job.width <= job.kernel / 2) problem = "frame smaller than the reflection padding";
    else if (job.channels < 1 || job.channels > 256) problem = "channels must be 1..256";
    else if ((size_t)labels.len != pixels * job.frames * job.label_bytes) problem = "labels buffer size";
    else if ((size_t)table.len != table_floats * sizeof(float)) problem = "table buffer size";
    else if ((size_t)bias.len != (size_t)job.channels * sizeof(float)) problem = "bias buffer size";
    else if ((size_t)out.len != pixels * job.channels * sizeof(float)) problem = "out buffer size";
    int failed = 0;
    if (!problem) {
        job.labels = labels.buf;
        job.bias = bias.buf;
        job.out = out.buf;
        const size_t plane_ints = (size_t)job.batch * job.frames * job.height * (job.width + job.kernel / 2 * 2);
        int32_t *planes = malloc(sizeof(int32_t) * plane_ints);
        float *aligned_table = aligned_alloc(64, (table.len + 63) / 64 * 64);
        if (planes && aligned_table) {
            Py_BEGIN_ALLOW_THREADS
            memcpy(aligned_table, table.buf, table.len);
            fill_planes(&job, planes);
            job.planes = planes;
            job.table = aligned_table;
            failed = run_threads(&job, threads);
            Py_END_ALLOW_THREADS
        } else {
            failed = 1;
        }
        free(planes);
        free(aligned_table);
    }
    PyBuffer_Release(&labels);
    PyBuffer_Release(&table);
    PyBuffer_Release(&bias);
    PyBuffer_Release(&out);
    if (problem) {
        PyErr_Format(PyExc_ValueError, "one_hot_conv: %s", problem);
        return NULL;
    }
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"one_hot_conv", one_hot_conv, METH_VARARGS, "Convolution over one-hot label maps as a table lookup."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_one_hot_conv", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__one_hot_conv(void) { return PyModule_Create(&module); }
