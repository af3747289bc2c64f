# A moving-average crossover strategy over lines `FAST<TAB>SLOW<TAB>PRICE` (paste of two signal
# files and the prices): long while the fast average is above the slow one, paying `fee` (a
# fraction) per change of position, and out after a loss of `stop` (a fraction) from the entry
# until the next upward crossing. Prints the parameters, the log return and the number of trades.
#   paste ma-FAST ma-SLOW prices | awk -F'\t' -v fee=0.001 -v stop=0.05 -v label=... -f evaluate.awk
$1 != "" && $2 != "" {
  up = ($1 + 0 > $2 + 0)
  if (held && last > 0) ret += log($3 / last)
  if (held && $3 < entry * (1 - stop)) { held = 0; stopped = 1; ret += log(1 - fee); trades++ }
  if (!up) stopped = 0
  want = up && !stopped
  if (want != held) {
    held = want
    ret += log(1 - fee)
    trades++
    if (held) entry = $3
  }
  last = $3
}
END { printf "%s return %.6f trades %d\n", label, ret, trades }
