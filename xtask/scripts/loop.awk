# A fixed amount of CPU work: `awk -v n=ITERATIONS -f loop.awk` (the verdict experiments of
# issue 21; 10% more iterations is a real ~10% slowdown).
BEGIN { for (i = 0; i < n; i++) s += i }
