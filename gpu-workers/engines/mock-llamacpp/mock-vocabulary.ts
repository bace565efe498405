/**
 * The mock engine's "model": a seeded PRNG over a small fixed vocabulary of word pieces. Output is
 * a pure function of (seed, prompt) — never of the slot, the load or the timing — so the same pair
 * yields byte-identical text, as llama.cpp does with one slot and cache_prompt:false (engines.md §1.6).
 */

const PIECES: readonly string[] = [
  ' the', ' a', ' of', ' and', ' to', ' in', ' is', ' that', ' for', ' it', ' with', ' as', ' on', ' was',
  ' by', ' at', ' from', ' this', ' be', ' are', ' or', ' an', ' they', ' which', ' one', ' you', ' not',
  ' but', ' what', ' all', ' when', ' we', ' there', ' can', ' time', ' model', ' token', ' queue', ' slot',
  ' pool', ' engine', ' stream', ' seed', ' light', ' river', ' stone', ' garden', ' north', ' quiet',
  ' blue', ' after', 'ing', 'ed', 's', ',', '.',
  // Whole multi-byte characters, so clients see non-ASCII text pass through intact.
  ' café', ' naïve', ' über', ' déjà', ' vu',
];

/** Ids below this are "special" tokens, as in real vocabularies; EOS is one of them. */
const FIRST_PIECE_ID = 100;
export const MOCK_EOS_TOKEN_ID = 2;
/** Token ids run 0 … MOCK_VOCAB_SIZE - 1 (the special ids, then one per piece): /v1/models' `n_vocab`. */
export const MOCK_VOCAB_SIZE = FIRST_PIECE_ID + PIECES.length;

// Serialised once: the hot path splices these into SSE chunks without calling JSON.stringify.
const PIECE_JSON: readonly string[] = PIECES.map((piece) => JSON.stringify(piece));

/** With EOS enabled, the seed-derived EOS position lies in [EOS_MIN_TOKENS, EOS_MIN_TOKENS + EOS_SPAN_TOKENS). */
const EOS_MIN_TOKENS = 8;
const EOS_SPAN_TOKENS = 56;

export function pieceText(tokenId: number): string {
  return PIECES[tokenId - FIRST_PIECE_ID] ?? '';
}

export function pieceJson(tokenId: number): string {
  return PIECE_JSON[tokenId - FIRST_PIECE_ID] ?? '""';
}

/** A crude whitespace tokenizer plus BOS: deterministic, which is all the mock needs. */
export function countPromptTokens(prompt: string | readonly number[]): number {
  if (typeof prompt !== 'string') return prompt.length;
  let words = 0;
  let inWord = false;
  for (let i = 0; i < prompt.length; i++) {
    const isSpace = prompt.charCodeAt(i) <= 0x20;
    if (!isSpace && !inWord) words++;
    inWord = !isSpace;
  }
  return words + 1;
}

/** The BOS id the mock's tokenizer adds (a special id, below the pieces). */
export const MOCK_BOS_TOKEN_ID = 1;

/**
 * POST /tokenize's answer: one id per whitespace-separated word, plus BOS when `addSpecial` — the same
 * count `countPromptTokens` gives a completion's prompt (and its `tokens_evaluated`). The ids are a hash of
 * each word onto the pieces: deterministic, and never special.
 */
export function mockTokenize(content: string, addSpecial: boolean): number[] {
  const ids = addSpecial ? [MOCK_BOS_TOKEN_ID] : [];
  let wordStart = -1;
  for (let i = 0; i <= content.length; i++) {
    const isSpace = i === content.length || content.charCodeAt(i) <= 0x20;
    if (!isSpace && wordStart < 0) wordStart = i;
    if (isSpace && wordStart >= 0) {
      ids.push(FIRST_PIECE_ID + (hashSeedAndPrompt(0, content.slice(wordStart, i)) % PIECES.length));
      wordStart = -1;
    }
  }
  return ids;
}

/** FNV-1a over UTF-16 code units, then mixed with the seed and finalised with murmur3's fmix32. */
function hashSeedAndPrompt(seed: number, promptKey: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < promptKey.length; i++) {
    hash ^= promptKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= Math.imul(seed >>> 0, 0x9e3779b1);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** mulberry32: tiny, fast, and good enough to make different seeds diverge within a few tokens. */
export class SeededTokenSource {
  private state: number;
  /** Index of the token that would be EOS when the engine emits EOS at all. */
  readonly eosAfterTokens: number;

  constructor(seed: number, prompt: string | readonly number[]) {
    this.state = hashSeedAndPrompt(seed, typeof prompt === 'string' ? prompt : prompt.join(','));
    this.eosAfterTokens = EOS_MIN_TOKENS + Math.floor(this.nextUnit() * EOS_SPAN_TOKENS);
  }

  nextTokenId(): number {
    return FIRST_PIECE_ID + Math.floor(this.nextUnit() * PIECES.length);
  }

  private nextUnit(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
