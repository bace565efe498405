/** The header that authenticates pool workers and workflow workers to the gateway's internal channel. */
export function internalAuthHeaders(internalToken: string): Record<string, string> {
  return { authorization: `Bearer ${internalToken}` };
}
