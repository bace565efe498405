/**
 * The value of a metric in an engine's Prometheus text: the sum over its samples, whatever their labels
 * (vLLM labels each by model name, Triton by model and version). Undefined when no sample is there.
 */
export function prometheusValue(text: string, name: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    // `name 12`, or `name{label="x"} 12`; a longer metric sharing the prefix (`name_created`) is another.
    if (!rest.startsWith(' ') && !rest.startsWith('{')) continue;
    const afterLabels = rest.startsWith('{') ? rest.slice(rest.indexOf('}') + 1) : rest;
    const value = Number(afterLabels.trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}
