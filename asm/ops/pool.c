/* Composition-aware pooling on the CPU: one summed-area table, then signed bilinear reads.
 *
 * Plain C99 with no Python or torch headers: asm/ops/kernel.py loads it with ctypes and
 * calls asm_pool on the buffers of numpy arrays or CPU tensors. The maths are those of
 * asm/ops/pool.py (see its docstring); the reads of a pattern come from asm/ops/reads.py.
 *
 * The table S is float64 and laid out channels-last, [B][H+1][W+1][L]: the reads of one
 * box at one template corner, in the channels of the cells that meet there, fall on the
 * same cache lines. It is summed as the tensor code's two cumsums sum it (down the columns,
 * then along the rows).
 *
 * Safety: the caller checks the arguments (asm/ops/reads.py), and the kernel still clamps
 * every coordinate into the map and checks every read's indices, so no input makes it read
 * outside its buffers.
 */
#include <stdint.h>
#include <stdlib.h>

#ifdef _WIN32
#define ASM_EXPORT __declspec(dllexport)
#else
#define ASM_EXPORT __attribute__((visibility("default")))
#endif

enum { ASM_OK = 0, ASM_NO_MEMORY = 1, ASM_BAD_READS = 2, ASM_BAD_SHAPE = 3 };

/* S for one batch item: sat[(r * (W + 1) + c) * L + l] = sum of map[l][:r][:c], in one pass
 * over the map. colsum [W * L] is scratch: the running sums down each column. */
#define DEFINE_SAT(NAME, T)                                                                        \
    static void NAME(const T *map, int64_t L, int64_t H, int64_t W, double *sat, double *colsum) { \
        const int64_t sy = (W + 1) * L, hw = H * W;                                                \
        for (int64_t i = 0; i < sy; i++) sat[i] = 0.0;                                             \
        for (int64_t i = 0; i < W * L; i++) colsum[i] = 0.0;                                       \
        for (int64_t r = 0; r < H; r++) {                                                          \
            const T *src = map + r * W;                                                            \
            double *row = sat + (r + 1) * sy;                                                      \
            for (int64_t l = 0; l < L; l++) row[l] = 0.0;                                          \
            for (int64_t c = 0; c < W; c++) {                                                      \
                double *down = colsum + c * L, *out = row + (c + 1) * L;                           \
                const double *left = row + c * L;                                                  \
                for (int64_t l = 0; l < L; l++) {                                                  \
                    down[l] += (double)src[l * hw + c];                                            \
                    out[l] = left[l] + down[l];                                                    \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_SAT(sat_f32, float)
DEFINE_SAT(sat_f64, double)

static double clamp(double v, double hi) { return v >= 0.0 ? (v <= hi ? v : hi) : 0.0; /* NaN -> 0 */ }

/* A coordinate's map pixel (clamped to 0..n-1) and its fraction inside that pixel.
 * (A cast of the clamped coordinate is its floor, without a libm call.) */
static int64_t pixel(double x, int64_t n, double *frac) {
    int64_t p = (int64_t)clamp(x, (double)(n - 1));
    *frac = x - (double)p;
    return p;
}

/* Scores of K boxes on a [B, L, H, W] map (float64 if map_f64, else float32).
 *
 * boxes [K, 5] float64 rows (batch_index, x1, y1, x2, y2); the template's distinct edges
 * us [nu], vs [nv] (box-relative, in [0, 1]); its T signed reads: edge indices tu, tv,
 * channel tp and coefficient coef; area_fraction of the region. out [K] float64 gets
 * sum_t coef[t] * integral(map[b, tp[t]] from the origin to the read point) / (area of the
 * box * area_fraction). Returns ASM_OK, or an error code (then out is not written). */
ASM_EXPORT int asm_pool(const void *map, int map_f64, int64_t B, int64_t L, int64_t H, int64_t W,
                        const double *boxes, int64_t K, const double *us, int64_t nu, const double *vs,
                        int64_t nv, const int64_t *tu, const int64_t *tv, const int64_t *tp,
                        const double *coef, int64_t T, double area_fraction, double *out) {
    if (B <= 0 || L <= 0 || H <= 0 || W <= 0 || K < 0 || nu <= 0 || nv <= 0 || T < 0) return ASM_BAD_SHAPE;
    for (int64_t t = 0; t < T; t++)
        if (tu[t] < 0 || tu[t] >= nu || tv[t] < 0 || tv[t] >= nv || tp[t] < 0 || tp[t] >= L) return ASM_BAD_READS;
    if (K == 0) return ASM_OK;

    const int64_t sy = (W + 1) * L, sb = (H + 1) * sy;
    double *sat = malloc((size_t)(B * sb) * sizeof(double));
    double *colsum = malloc((size_t)(W * L) * sizeof(double));
    int64_t *col = malloc((size_t)(nu + nv) * sizeof(int64_t));
    double *frac = malloc((size_t)(nu + nv) * sizeof(double));
    if (!sat || !colsum || !col || !frac) {
        free(sat), free(colsum), free(col), free(frac);
        return ASM_NO_MEMORY;
    }
    int64_t *row = col + nu;
    double *fx = frac, *fy = frac + nu;
    for (int64_t b = 0; b < B; b++) {
        if (map_f64)
            sat_f64((const double *)map + b * L * H * W, L, H, W, sat + b * sb, colsum);
        else
            sat_f32((const float *)map + b * L * H * W, L, H, W, sat + b * sb, colsum);
    }

    for (int64_t k = 0; k < K; k++) {
        const double *box = boxes + 5 * k;
        const double *s = sat + (int64_t)clamp(box[0], (double)(B - 1)) * sb;
        double x1 = clamp(box[1], (double)W), y1 = clamp(box[2], (double)H);
        double bw = clamp(box[3], (double)W) - x1, bh = clamp(box[4], (double)H) - y1;
        /* every distinct edge of the template, in map coordinates: its pixel and fraction */
        for (int64_t i = 0; i < nu; i++) col[i] = pixel(x1 + us[i] * bw, W, &fx[i]) * L;
        for (int64_t j = 0; j < nv; j++) row[j] = pixel(y1 + vs[j] * bh, H, &fy[j]) * sy;
        /* the integral from the origin to a point is the bilinear interpolation of S there */
        double acc = 0.0;
        for (int64_t t = 0; t < T; t++) {
            const double *p = s + row[tv[t]] + col[tu[t]] + tp[t];
            double a = fx[tu[t]], top = p[0] + a * (p[L] - p[0]), bottom = p[sy] + a * (p[sy + L] - p[sy]);
            acc += coef[t] * (top + fy[tv[t]] * (bottom - top));
        }
        out[k] = acc * (1.0 / (bw * bh * area_fraction));
    }
    free(sat), free(colsum), free(col), free(frac);
    return ASM_OK;
}

/* The calling convention's version: asm/ops/kernel.py refuses a library built from another
 * version of this file (a stale build), rather than call it with the wrong arguments. */
ASM_EXPORT int asm_kernel_abi(void) { return 1; }

/* setuptools builds this file as a Python extension, whose link step on Windows exports
 * the module's init function by name; it is never imported as a module. */
ASM_EXPORT void *PyInit__kernel(void) { return NULL; }
