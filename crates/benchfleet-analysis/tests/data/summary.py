# Reference values for src/summary.rs tests. Run: python3 tests/data/summary.py
import numpy as np
from scipy import stats

x = np.array([0.12, 0.5, 0.51, 0.7, 1.3, 2.2, 2.25, 9.0])
for p in [0, 10, 25, 50, 90, 95, 99, 100]:
    print("percentile", p, repr(float(np.percentile(x, p))))

y = np.array([1.02, 0.98, 1.10, 1.01, 0.97, 1.05, 1.00, 0.99, 1.30, 1.03])
print("mean", repr(float(np.mean(y))))
print("std", repr(float(np.std(y, ddof=1))))
print("median", repr(float(np.median(y))))
print("p95", repr(float(np.percentile(y, 95))), "p99", repr(float(np.percentile(y, 99))))
print("mad", repr(float(np.median(np.abs(y - np.median(y))))), repr(float(stats.median_abs_deviation(y))))
