# Moving averages of the prices read (one a line), one file per window: OUT/ma-W holds, line for
# line, the mean of the last W prices (empty while fewer than W were read). Each mean is summed
# over its whole window, O(prices x window): the expensive signal the sweep replays.
#   awk -v windows="5 20 100" -v out=DIR -f signals.awk PRICES
{ p[NR] = $1 }
END {
  nw = split(windows, w, " ")
  for (k = 1; k <= nw; k++) {
    f = out "/ma-" w[k]
    for (i = 1; i <= NR; i++) {
      if (i < w[k]) { print "" > f; continue }
      s = 0
      for (j = i - w[k] + 1; j <= i; j++) s += p[j]
      printf "%.6f\n", s / w[k] > f
    }
    close(f)
  }
}
