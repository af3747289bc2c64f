# Reference values for tests/reference.rs, computed independently with numpy/scipy.
# Run: python3 tests/data/reference.py   (numpy 2.4, scipy 1.17)
import numpy as np
from scipy import stats

A = [1.02, 0.98, 1.10, 1.01, 0.97, 1.05, 1.00, 0.99, 1.30, 1.03]
B = [1.08, 1.12, 1.05, 1.11, 1.09, 1.15, 1.07, 1.10]
C = [3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 2.0]          # ties
D = [2.0, 6.0, 4.0, 4.0, 7.0, 5.0]

def r(x):
    return repr(float(x))

for name, (x, y) in {"A_B": (A, B), "C_D": (C, D), "B_A": (B, A)}.items():
    t = stats.ttest_ind(x, y, equal_var=False)
    u = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    nx, ny = len(x), len(y)
    sp = np.sqrt(((nx - 1) * np.var(x, ddof=1) + (ny - 1) * np.var(y, ddof=1)) / (nx + ny - 2))
    d = (np.mean(y) - np.mean(x)) / sp
    g = d * (1 - 3 / (4 * (nx + ny) - 9))
    gt = sum(1 for a in x for b in y if b > a); lt = sum(1 for a in x for b in y if b < a)
    cliff = (gt - lt) / (nx * ny)
    print(name, "welch t", r(t.statistic), "df", r(t.df), "p", r(t.pvalue))
    print(name, "mwu U", r(u.statistic), "p", r(u.pvalue))
    print(name, "cohen d", r(d), "hedges g", r(g), "cliff", r(cliff))

# Threshold limits over history H
H = [10.0, 10.2, 9.9, 10.1, 10.0, 10.4, 9.8]
m, s = np.mean(H), np.std(H, ddof=1)
print("z 0.99 upper", r(m + stats.norm.ppf(0.99) * s), "lower", r(m - stats.norm.ppf(0.99) * s))
print("t 0.95 upper", r(m + stats.t.ppf(0.95, len(H) - 1) * s), "lower", r(m - stats.t.ppf(0.95, len(H) - 1) * s))
q1, q3 = np.percentile(H, [25, 75])
print("iqr 1.5 upper", r(np.median(H) + 1.5 * (q3 - q1)), "lower", r(np.median(H) - 1.5 * (q3 - q1)))
print("pct 0.05 upper", r(m * 1.05), "lower", r(m * 0.95))
