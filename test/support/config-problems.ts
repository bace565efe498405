import { ConfigError, parseConfig } from '../../core/config';

/** The problems config validation reports for a document; none when it accepts it. */
export function configProblemsOf(document: unknown): readonly string[] {
  try {
    parseConfig(document);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}
