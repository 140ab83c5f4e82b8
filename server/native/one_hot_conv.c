/* A convolution over one-hot label maps, computed as the table lookup it is.
 *
 * The generator's first convolution reads T one-hot maps of C classes (T*C input channels) with a KxK kernel.
 * For a one-hot input, every multiply is by 0 or 1, so each output pixel is the sum of T*K*K weight vectors
 * picked by the class IDs under the kernel:
 *
 *     out[b, :, y, x] = bias + sum over t, ky, kx of table[t, ky, label[b, t, y', x'], kx, :]
 *
 * where (y', x') is (y + ky - K/2, x + kx - K/2) reflected at the borders (ReflectionPad2d). That is T*K*K
 * vector additions per pixel instead of T*C*K*K multiply-adds. Class IDs >= C select the table's zero row, as
 * an all-zero one-hot column would.
 *
 * The table keeps a class's K horizontal taps next to each other, so for a 7x7 kernel the tap kx of a pick is
 * a constant displacement from the class's row: one vector add with a memory operand per pick, and each label
 * under a row of pixels is read once for all the taps that use it.
 *
 * Label maps are mostly regions of one class. Where every label under a block of pixels' KxK windows in one
 * frame is one class, each pixel of the block adds that class's K*K taps summed once in advance (`sums`);
 * where only one tap row's labels are, that row's K taps summed. Both sums' rounding differs from separate
 * additions by a unit in the last place or so.
 *
 * one_hot_conv(labels, table, bias, out, batch, frames, height, width, classes, kernel, channels, label_bytes,
 *              threads)
 *   labels  C-contiguous uint8 or uint16 [batch, frames, height, width]
 *   table   C-contiguous float32 [frames, kernel, classes + 1, kernel, channels] (class row `classes` all zero)
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
    const uint32_t *planes; /* [batch * frames][height][width + 2 * pad]: each label's table offset (floats) */
    const float *table;     /* 64-byte aligned copy of the caller's table */
    const float *sums;      /* [frames][K + 1][classes + 1][K][channels]: for each frame, at kx = 0 of tap
                               row ky its class's K taps summed, and at "row" K its K*K taps summed */
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

/* Every label row with its columns reflected by K/2 on each side, each label turned into the offset of its
 * class's row in a table slice (classes >= C clamped to the zero row), so the row kernels index the table
 * directly. */
#define DEFINE_FILL(NAME, LABEL)                                                                             \
    static void NAME(const Job *job, uint32_t *planes) {                                                    \
        const int pad = job->kernel / 2, w = job->width, padded = w + 2 * pad;                              \
        const uint32_t classes = (uint32_t)job->classes, row_floats = (uint32_t)(job->kernel * job->channels); \
        const size_t rows = (size_t)job->batch * job->frames * job->height;                                 \
        for (size_t row = 0; row < rows; ++row) {                                                             \
            const LABEL *src = (const LABEL *)job->labels + row * w;                                          \
            uint32_t *dst = planes + row * padded + pad;                                                      \
            for (int x = 0; x < w; ++x) dst[x] = (src[x] < classes ? src[x] : classes) * row_floats;         \
            for (int x = 1; x <= pad; ++x) {                                                                  \
                dst[-x] = dst[reflect(-x, w)];                                                                \
                dst[w - 1 + x] = dst[reflect(w - 1 + x, w)];                                                  \
            }                                                                                                 \
        }                                                                                                     \
    }

DEFINE_FILL(fill_planes_u8, uint8_t)
DEFINE_FILL(fill_planes_u16, uint16_t)

/* For each frame: at kx = 0 of every (tap row, class), that class's K taps summed in kx order; at tap row K,
 * its K*K taps summed (the row sums in ky order). */
static void fill_sums(const Job *job, const float *table, float *sums) {
    const int k = job->kernel, channels = job->channels;
    const size_t class_floats = (size_t)k * channels, slice_floats = (size_t)(job->classes + 1) * class_floats;
    for (int t = 0; t < job->frames; ++t) {
        const float *frame_table = table + (size_t)t * k * slice_floats;
        float *frame_sums = sums + (size_t)t * (k + 1) * slice_floats;
        for (int c = 0; c <= job->classes; ++c) {
            float *total = frame_sums + k * slice_floats + c * class_floats;
            for (int ky = 0; ky < k; ++ky) {
                const float *taps = frame_table + ky * slice_floats + c * class_floats;
                float *row_sum = frame_sums + ky * slice_floats + c * class_floats;
                memcpy(row_sum, taps, sizeof(float) * channels);
                for (int kx = 1; kx < k; ++kx)
                    for (int o = 0; o < channels; ++o) row_sum[o] += taps[(size_t)kx * channels + o];
                for (int o = 0; o < channels; ++o) total[o] = ky ? total[o] + row_sum[o] : row_sum[o];
            }
        }
    }
}

typedef float vec8 __attribute__((vector_size(32), aligned(4)));  /* 8 floats, unaligned loads allowed */
typedef float vec16 __attribute__((vector_size(64), aligned(4))); /* 16: one AVX-512 register, two AVX2 ones */

/* One output row of a KxK kernel, frame by frame, PIX pixels at a time: the block's PIX * NV accumulators stay
 * in registers over the frame's K tap rows, whose labels are read once each (PIX + K - 1 per row). A block
 * whose windows are all one class adds that class's frame sum; a tap row whose labels are all one class adds
 * its row sum; any other row adds its K picks per pixel. `acc` is [width][channels], the bias on entry. */
#define DEFINE_ROW_KERNEL(NAME, VEC, LANES, NV, PIX, K)                                                      \
    __attribute__((target_clones("avx512f", "avx2", "default"))) static void NAME(                           \
        const Job *job, const float *table, const uint32_t *const *rows, float *acc) {                       \
        const int w = job->width, last = PIX + K - 2;                                                        \
        const size_t slice_floats = (size_t)(job->classes + 1) * K * NV * LANES;                             \
        for (int t = 0; t < job->frames; ++t) {                                                              \
            const uint32_t *const *frame_rows = rows + t * K;                                                \
            const float *frame_table = table + (size_t)t * K * slice_floats;                                 \
            const float *frame_sums = job->sums + (size_t)t * (K + 1) * slice_floats;                        \
            int x = 0;                                                                                       \
            for (; x + PIX <= w; x += PIX) {                                                                 \
                VEC *out = (VEC *)(acc + (size_t)x * NV * LANES);                                            \
                VEC sum[PIX][NV];                                                                            \
                _Pragma("GCC unroll 16") for (int p = 0; p < PIX; ++p)                                       \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) sum[p][v] = out[p * NV + v];        \
                const uint32_t corner = frame_rows[0][x];                                                    \
                int uniform = frame_rows[0][x + last] == corner && frame_rows[K - 1][x] == corner &&         \
                              frame_rows[K - 1][x + last] == corner;                                         \
                for (int ky = 0; uniform && ky < K; ++ky)                                                    \
                    for (int j = 0; j <= last; ++j) uniform &= frame_rows[ky][x + j] == corner;              \
                if (uniform) {                                                                               \
                    const VEC *frame_sum = (const VEC *)(frame_sums + K * slice_floats + corner);            \
                    _Pragma("GCC unroll 16") for (int p = 0; p < PIX; ++p)                                   \
                        _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) sum[p][v] += frame_sum[v];      \
                } else {                                                                                     \
                    for (int ky = 0; ky < K; ++ky) {                                                         \
                        const float *slice = frame_table + (size_t)ky * slice_floats;                        \
                        uint32_t offset[PIX + K - 1], differ = 0;                                            \
                        _Pragma("GCC unroll 32") for (int j = 0; j <= last; ++j) {                           \
                            offset[j] = frame_rows[ky][x + j];                                               \
                            differ |= offset[j] ^ offset[0];                                                 \
                        }                                                                                    \
                        if (!differ) {                                                                       \
                            const VEC *row_sum = (const VEC *)(frame_sums + (size_t)ky * slice_floats + offset[0]); \
                            _Pragma("GCC unroll 16") for (int p = 0; p < PIX; ++p)                           \
                                _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) sum[p][v] += row_sum[v]; \
                            continue;                                                                        \
                        }                                                                                    \
                        _Pragma("GCC unroll 16") for (int kx = 0; kx < K; ++kx)                              \
                            _Pragma("GCC unroll 16") for (int p = 0; p < PIX; ++p) {                         \
                                const VEC *picked = (const VEC *)(slice + offset[p + kx] + kx * NV * LANES); \
                                _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) sum[p][v] += picked[v]; \
                            }                                                                                \
                    }                                                                                        \
                }                                                                                            \
                _Pragma("GCC unroll 16") for (int p = 0; p < PIX; ++p)                                       \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) out[p * NV + v] = sum[p][v];        \
            }                                                                                                \
            for (; x < w; ++x)                                                                               \
                for (int ky = 0; ky < K; ++ky)                                                               \
                    for (int kx = 0; kx < K; ++kx) {                                                         \
                        const VEC *picked = (const VEC *)(frame_table + (size_t)ky * slice_floats +          \
                                                          frame_rows[ky][x + kx] + kx * NV * LANES);         \
                        for (int v = 0; v < NV; ++v) ((VEC *)(acc + (size_t)x * NV * LANES))[v] += picked[v]; \
                    }                                                                                        \
        }                                                                                                    \
    }

/* The generator's label convolutions are 7x7. */
DEFINE_ROW_KERNEL(row_kernel_7x7_8, vec8, 8, 1, 8, 7)
DEFINE_ROW_KERNEL(row_kernel_7x7_16, vec16, 16, 1, 8, 7)
DEFINE_ROW_KERNEL(row_kernel_7x7_32, vec16, 16, 2, 4, 7)
DEFINE_ROW_KERNEL(row_kernel_7x7_64, vec16, 16, 4, 2, 7)
DEFINE_ROW_KERNEL(row_kernel_7x7_128, vec16, 16, 8, 1, 7)

/* Any other kernel size or channel count: plain loops. */
static void row_kernel_any(const Job *job, const float *table, const uint32_t *const *rows, float *acc) {
    const int k = job->kernel, taps = job->frames * k, w = job->width, channels = job->channels;
    const size_t slice_floats = (size_t)(job->classes + 1) * k * channels;
    for (int r = 0; r < taps; ++r)
        for (int x = 0; x < w; ++x)
            for (int kx = 0; kx < k; ++kx) {
                const float *picked = table + (size_t)r * slice_floats + rows[r][x + kx] + (size_t)kx * channels;
                for (int o = 0; o < channels; ++o) acc[(size_t)x * channels + o] += picked[o];
            }
}

static void *run_rows(void *arg) {
    Job *job = (Job *)arg;
    const int k = job->kernel, pad = k / 2, taps = job->frames * k, w = job->width, h = job->height;
    const int channels = job->channels, padded = w + 2 * pad;
    const uint32_t **rows = malloc(sizeof(uint32_t *) * (size_t)taps);
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
        for (int x = 0; x < w; ++x)
            for (int o = 0; o < channels; ++o) acc[(size_t)x * channels + o] = job->bias[o];
        const int specialised = k == 7 ? channels : 0;
        switch (specialised) {
            case 8: row_kernel_7x7_8(job, job->table, rows, acc); break;
            case 16: row_kernel_7x7_16(job, job->table, rows, acc); break;
            case 32: row_kernel_7x7_32(job, job->table, rows, acc); break;
            case 64: row_kernel_7x7_64(job, job->table, rows, acc); break;
            case 128: row_kernel_7x7_128(job, job->table, rows, acc); break;
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
        const size_t plane_rows = (size_t)job.batch * job.frames * job.height;
        uint32_t *planes = malloc(sizeof(uint32_t) * plane_rows * (job.width + job.kernel / 2 * 2));
        float *aligned_table = aligned_alloc(64, (table.len + 63) / 64 * 64);
        const size_t sums_bytes = table.len / job.kernel * (job.kernel + 1);
        float *sums = aligned_alloc(64, (sums_bytes + 63) / 64 * 64);
        if (planes && aligned_table && sums) {
            Py_BEGIN_ALLOW_THREADS
            memcpy(aligned_table, table.buf, table.len);
            fill_sums(&job, aligned_table, sums);
            job.sums = sums;
            (job.label_bytes == 1 ? fill_planes_u8 : fill_planes_u16)(&job, planes);
            job.planes = planes;
            job.table = aligned_table;
            failed = run_threads(&job, threads);
            Py_END_ALLOW_THREADS
        } else {
            failed = 1;
        }
        free(planes);
        free(aligned_table);
        free(sums);
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
