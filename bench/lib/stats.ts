// Small statistics for the bench: percentiles of latency samples and the
// median of repeated runs.

/** Nearest-rank percentiles of `samples[0..count)`; sorts that part in place. */
export function percentiles (samples: Float64Array, count: number, ranks: number[]): number[] {
  if (count === 0) return ranks.map(() => Number.NaN)
  const sorted = samples.subarray(0, count).sort()
  return ranks.map((rank) => sorted[Math.min(count - 1, Math.max(0, Math.ceil((rank / 100) * count) - 1))] as number)
}

/** Median of finite values (the mean of the middle two for an even count); NaN when there are none. */
export function median (values: number[]): number {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b)
  if (finite.length === 0) return Number.NaN
  const middle = Math.floor(finite.length / 2)
  return finite.length % 2 === 1
    ? finite[middle] as number
    : ((finite[middle - 1] as number) + (finite[middle] as number)) / 2
}

export function round (value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}
