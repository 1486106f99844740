// The segment-table learning-rate function, for the GPU and for the host test.
//
// This is the CUDA twin of fastdecay/_cpu/schedule.py: the same primitives with
// the same float64 operations in the same order (layout in fastdecay/_layout.py).
// Integer powers use binary exponentiation as Numba's float ** int does, so the
// host build of this header reproduces the Numba kernels bit for bit.
#pragma once

#include "common.cuh"

namespace fastdecay {

// columns of a segment row, and primitive kinds (fastdecay/_layout.py)
enum { WIDTH = 9, START = 0, ORIGIN = 1, KIND = 2, P0 = 3 };
enum {
    KIND_CONSTANT = 0,
    KIND_EXPONENTIAL = 1,
    KIND_INVERSE_TIME = 2,
    KIND_POLYNOMIAL = 3,
    KIND_COSINE = 4,
    KIND_COSINE_RESTARTS = 5,
    KIND_CYCLIC = 6,
    KIND_ONE_MINUS_POWER = 7,
    KIND_TABULATED = 8,
    KIND_PRODUCT = 9,
    KIND_DATA = 10,
    KIND_COSINE_POWER = 11,
};
enum { VALUES_PER_ROW = WIDTH - P0 };

// x ** n for an integer n, as Numba lowers float ** int64 (int_power_impl).
FD_HD double powi(double a, i64 b) {
    double r = 1.0;
    bool invert = b < 0;
    i64 e = invert ? -b : b;
    if (e > 0x10000) return pow(a, (double)b);
    while (e != 0) {
        if (e & 1) r *= a;
        e >>= 1;
        a *= a;
    }
    return invert ? 1.0 / r : r;
}

// cos(pi x), as fastdecay/_cpu/schedule.py's cos_pi (its comments say why each step is
// exact): reduced exactly to s in [0, 1/4], then Taylor polynomials in z = s * s in fused
// multiply-adds (one rounding on every backend), 1 - (pi s)^2 / 2 and pi s as sums of two doubles.
FD_HD double cos_pi(double x) {
    const double C[9] = {1.0, -4.934802200544679, 4.0587121264167685, -1.3352627688545895,
                         0.2353306303588932, -0.02580689139001406, 0.0019295743094039231,
                         -0.0001046381049248457, 4.303069587032947e-06};
    const double S[9] = {3.141592653589793, -5.16771278004997, 2.5501640398773455, -0.5992645293207921,
                         0.08214588661112823, -0.0073704309457143504, 0.00046630280576761255,
                         -2.1915353447830217e-05, 7.952054001475513e-07};
    const double S_LO = 1.2246467991473532e-16, C_LO = -3.1326477543698557e-16;
    double a = fabs(x);
    a = a - 2.0 * floor(0.5 * a);
    a = fmin(a, 2.0 - a);
    const bool negate = a > 0.5;
    const double r = negate ? 1.0 - a : a;
    const bool odd = r > 0.25;
    const double s = odd ? 0.5 - r : r;
    const double z = s * s;
    double q = fma(z, C[8], C[7]);
    double p = fma(z, S[8], S[7]);
    for (int k = 6; k > 1; --k) {
        q = fma(z, q, C[k]);
        p = fma(z, p, S[k]);
    }
    p = fma(z, p, S[1]);
    const double hi = z * C[1];
    const double c0 = 1.0 + hi;
    const double c = c0 + ((((1.0 - c0) + hi) + fma(z, C[1], -hi)) + fma(z * z, q, z * C_LO));
    const double h = s * S[0];
    const double sn = h + fma(s * z, p, fma(s, S[0], -h) + s * S_LO);
    const double v = odd ? sn : c;
    return negate ? -v : v;
}

// Index of the segment that holds step t: the last one with start <= t.
FD_HD int segment_of(const double* row_table, int n_segments, double t) {
    int k = 0;
    for (int j = 1; j < n_segments; ++j) {
        if (row_table[j * WIDTH + START] <= t) k = j;
        else break;
    }
    return k;
}

// SGDR: position inside the cycle holding tau, that cycle's length and its index.
FD_HD void cosine_restart_cycle(double tau, double T0, double mult, double* cur, double* Ti, i64* index) {
    if (mult == 1.0) {
        i64 i = (i64)floor(tau / T0);
        *cur = tau - (double)i * T0;
        *Ti = T0;
        *index = i;
        return;
    }
    i64 i = (i64)floor(log(tau / T0 * (mult - 1.0) + 1.0) / log(mult));
    // the logarithm can land one cycle off at an exact boundary: step back or forward
    if (T0 * (powi(mult, i) - 1.0) / (mult - 1.0) > tau) {
        i -= 1;
    } else if (T0 * (powi(mult, i + 1) - 1.0) / (mult - 1.0) <= tau) {
        i += 1;
    }
    *cur = tau - T0 * (powi(mult, i) - 1.0) / (mult - 1.0);
    *Ti = T0 * powi(mult, i);
    *index = i;
}

// lr * power, and lr itself where lr is 0: a rate of 0 stays 0 where a growing power
// has overflowed (0 * inf is NaN). The CPU's scaled.
FD_HD double scaled(double lr, double power) { return lr == 0.0 ? lr : lr * power; }

// Rate of one primitive at tau steps past its origin.
FD_HD_CALL double primitive(int kind, double tau, const double* p) {
    const double p0 = p[0], p1 = p[1], p2 = p[2], p3 = p[3], p4 = p[4], p5 = p[5];
    switch (kind) {
    case KIND_CONSTANT:
        return p0;
    case KIND_EXPONENTIAL:
    case KIND_INVERSE_TIME: {
        double e = tau / p2;
        if (p3 != 0.0) e = floor(e);
        if (kind == KIND_EXPONENTIAL) return scaled(p0, pow(p1, e));
        return p0 == 0.0 ? p0 : p0 / pow(1.0 + p1 * e, p4);
    }
    case KIND_POLYNOMIAL: {
        double T = p1;
        if (p4 != 0.0) {
            if (tau > 0.0) T = p1 * (double)(i64)ceil(tau / p1);
        } else if (tau > T) {
            tau = T;
        }
        const double x = 1.0 - tau / T;
        return (p0 - p3) * (p2 == 1.0 ? x : pow(x, p2)) + p3;  // (a line: no pow)
    }
    case KIND_COSINE:
        if (tau > p1) tau = p1;
        return p2 + (p0 - p2) * (1.0 + cos_pi(tau / p1)) / 2.0;
    case KIND_COSINE_RESTARTS: {
        double cur, Ti;
        i64 i;
        cosine_restart_cycle(tau, p1, p2, &cur, &Ti, &i);
        return p3 + (scaled(p0, powi(p4, i)) - scaled(p3, powi(p5, i))) * (1.0 + cos_pi(cur / Ti)) / 2.0;
    }
    case KIND_COSINE_POWER:
        if (tau > p1) tau = p1;
        return p2 + (p0 - p2) * pow((1.0 + cos_pi(p3 * tau / p1)) / 2.0, p4);
    case KIND_CYCLIC: {
        // the same float operations as torch's CyclicLR.get_lr
        double total = p2 + p3;
        double cycle = (double)(i64)floor(1.0 + tau / total);
        double x = 1.0 + tau / total - cycle;
        double ratio = p2 / total;
        double scale = (x <= ratio) ? x / ratio : (x - 1.0) / (ratio - 1.0);
        double height = (p1 - p0) * scale;
        if (height == 0.0) return p0;  // a cycle's foot, also where an exp_range gamma > 1 has overflowed
        return p0 + height * pow(p4, cycle - 1.0) * pow(p5, tau);
    }
    case KIND_ONE_MINUS_POWER:
        if (tau > p1) tau = p1;
        return p3 + (p0 - p3) * (1.0 - pow(tau / p1, p2));
    default:
        return nan("");
    }
}

// Value i of the TABULATED row `seg`'s table (side rows of `r`), clamped to its ends.
FD_HD double table_value(const double* r, const double* seg, i64 i) {
    const i64 n = (i64)seg[P0 + 1];
    if (i > n - 1) i = n - 1;
    if (i < 0) i = 0;
    return r[((i64)seg[P0] + i / VALUES_PER_ROW) * WIDTH + P0 + i % VALUES_PER_ROW];
}

// Rate of row k of one schedule's rows `r` at step t, for any kind but PRODUCT.
FD_HD double factor_rate(const double* r, int k, double t) {
    const double* seg = r + k * WIDTH;
    const int kind = (int)seg[KIND];
    if (kind == KIND_TABULATED) return table_value(r, seg, (i64)floor(t - seg[ORIGIN]));
    return primitive(kind, t - seg[ORIGIN], seg + P0);
}

// Rate of segment k of one schedule's rows `r` (n_segments x WIDTH) at step t: a
// PRODUCT multiplies its factor rows.
FD_HD double segment_rate(const double* r, int k, double t) {
    const double* seg = r + k * WIDTH;
    if ((int)seg[KIND] == KIND_PRODUCT) {
        const int first = (int)seg[P0];
        const int last = first + (int)seg[P0 + 1];
        double rate = 1.0;
        for (int f = first; f < last; ++f) rate *= factor_rate(r, f, t);
        return rate;
    }
    return factor_rate(r, k, t);
}

// Rate of schedule `row` of a (rows, n_segments, WIDTH) table at step t.
FD_HD double lr_at(const double* table, int n_segments, i64 row, double t) {
    const double* r = table + row * (i64)n_segments * WIDTH;
    return segment_rate(r, segment_of(r, n_segments, t), t);
}

FD_HD bool is_level_row(const double* seg) {
    int kind = (int)seg[KIND];
    if (kind == KIND_CONSTANT) return true;
    return (kind == KIND_EXPONENTIAL || kind == KIND_INVERSE_TIME) && seg[P0 + 3] != 0.0;
}

// True for segments whose value moves only in jumps: constant and staircase
// primitives, and products of them.
FD_HD bool is_level(const double* r, int k) {
    const double* seg = r + k * WIDTH;
    if ((int)seg[KIND] == KIND_PRODUCT) {
        const int first = (int)seg[P0];
        const int last = first + (int)seg[P0 + 1];
        for (int f = first; f < last; ++f)
            if (!is_level_row(r + f * WIDTH)) return false;
        return true;
    }
    return is_level_row(seg);
}

// True where a TABULATED row falls at t by more than twice the larger neighbouring
// change (a step of a step function, not a smooth curve's slope).
FD_HD bool table_jumps(const double* r, const double* seg, double t) {
    const i64 i = (i64)floor(t - seg[ORIGIN]);
    const i64 n = (i64)seg[P0 + 1];
    if (i < 1 || i > n - 1) return false;
    const double fall = table_value(r, seg, i - 1) - table_value(r, seg, i);
    const double earlier = i >= 2 ? fabs(table_value(r, seg, i - 2) - table_value(r, seg, i - 1)) : 0.0;
    const double later = i + 1 <= n - 1 ? fabs(table_value(r, seg, i) - table_value(r, seg, i + 1)) : 0.0;
    return fall > 2.0 * fmax(earlier, later);
}

// staircase_steps of one primitive row; inside: only a plateau change after its
// first plateau (not the one it starts with at its origin).
FD_HD bool row_steps(const double* r, const double* seg, double t, bool inside) {
    int kind = (int)seg[KIND];
    if ((kind == KIND_EXPONENTIAL || kind == KIND_INVERSE_TIME) && seg[P0 + 3] != 0.0) {
        double tau = t - seg[ORIGIN];
        if (inside && tau < 1.0) return false;
        return floor(tau / seg[P0 + 2]) != floor((tau - 1.0) / seg[P0 + 2]);
    }
    if (kind == KIND_TABULATED) return table_jumps(r, seg, t);
    return false;
}

// True where segment k moves to a new plateau between t - 1 and t: a staircase
// primitive's next plateau, a table's step, or either in a factor of a product
// (inside: not counting a primitive's first plateau, at its origin).
FD_HD bool staircase_steps(const double* r, int k, double t, bool inside = false) {
    const double* seg = r + k * WIDTH;
    if ((int)seg[KIND] == KIND_PRODUCT) {
        const int first = (int)seg[P0];
        const int last = first + (int)seg[P0 + 1];
        for (int f = first; f < last; ++f)
            if (row_steps(r, r + f * WIDTH, t, inside)) return true;
        return false;
    }
    return row_steps(r, seg, t, inside);
}

// True where the rate may jump at step t: a segment starts in (t - 1, t], or a
// staircase primitive moves to its next plateau.
FD_HD bool is_boundary(const double* table, int n_segments, i64 row, double t) {
    if (t < 1.0) return false;
    const double* r = table + row * (i64)n_segments * WIDTH;
    int k = segment_of(r, n_segments, t);
    if (segment_of(r, n_segments, t - 1.0) != k) return true;
    return staircase_steps(r, k, t);
}

// True where segment k starts at step t with its formula's origin there (or, for a
// product, a factor's): a join's piece, a warmup's end; not one-cycle's phases.
FD_HD bool begins_at(const double* r, int k, double t) {
    const double* seg = r + k * WIDTH;
    if (seg[START] != t) return false;
    if ((int)seg[KIND] == KIND_PRODUCT) {
        const int first = (int)seg[P0];
        const int last = first + (int)seg[P0 + 1];
        for (int f = first; f < last; ++f)
            if (r[f * WIDTH + ORIGIN] == t) return true;
        return false;
    }
    return seg[ORIGIN] == t;
}

// eta_t / eta_{t-1} where the rate falls discontinuously at t, else 1 (on_drop):
// a staircase plateau change (also on a segment boundary), or a segment boundary
// where the pieces do not meet: where the new piece begins at t (its origin), where
// the piece before carried on to t differs from the new piece's rate by more than
// 1e-9 relative; elsewhere, where neither piece carried across the boundary lands
// within one step's change of either piece from the other side's rate (the rule
// of drop_ratio in fastdecay/_cpu/schedule.py).
FD_HD double drop_ratio(const double* table, int n_segments, i64 row, double t) {
    if (t < 1.0) return 1.0;
    const double* r = table + row * (i64)n_segments * WIDTH;
    int k = segment_of(r, n_segments, t);
    int j = segment_of(r, n_segments, t - 1.0);
    double now = segment_rate(r, k, t);
    double before = segment_rate(r, j, t - 1.0);
    if (!(now < before && before > 0.0)) return 1.0;
    if (k == j) return staircase_steps(r, k, t) ? now / before : 1.0;
    if (staircase_steps(r, k, t, true)) return now / before;
    double carried_on = is_level(r, j) ? before : segment_rate(r, j, t);
    if (carried_on != carried_on) carried_on = before;  // not a number: carried as the level
    if (begins_at(r, k, t)) return fabs(carried_on - now) <= 1e-9 * before ? 1.0 : now / before;
    double carried_back = is_level(r, k) ? now : segment_rate(r, k, t - 1.0);
    if (carried_back != carried_back) carried_back = now;
    double own_step = fmax(fabs(carried_on - before), fabs(now - carried_back));
    if (fabs(carried_on - now) <= own_step || fabs(carried_back - before) <= own_step) return 1.0;
    return now / before;
}

}  // namespace fastdecay
