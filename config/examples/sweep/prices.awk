# A random walk of n prices (one a line), the same for the same n and seed with one awk.
#   awk -v n=5000 -v seed=19 -f prices.awk
BEGIN {
  srand(seed)
  p = 100
  for (i = 0; i < n; i++) {
    p *= exp((rand() - 0.5) * 0.02)
    printf "%.4f\n", p
  }
}
