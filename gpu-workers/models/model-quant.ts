import { readGgufHeader } from './gguf-reader';

/**
 * llama.cpp's `general.file_type` (enum llama_ftype) as the quant names model files and people use.
 * Values llama.cpp retired (4–6, 33–35) are absent on purpose: a file carrying one says `ftype-N`.
 */
const LLAMA_FILE_TYPES: Readonly<Record<number, string>> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M', 13: 'Q3_K_L',
  14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 19: 'IQ2_XXS', 20: 'IQ2_XS', 21: 'Q2_K_S', 22: 'IQ3_XS',
  23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M', 28: 'IQ2_S', 29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16',
  36: 'TQ1_0', 37: 'TQ2_0',
};

/** A quant tag inside a file or model name, e.g. `SmolLM2-135M-Instruct-Q4_K_M.gguf`. */
const QUANT_IN_NAME = /(?<![A-Za-z0-9])(IQ\d_(?:XXS|XS|S|M|NL)|TQ\d_0|Q\d_K(?:_[SML])?|Q\d_\d|BF16|F16|F32)(?![A-Za-z0-9])/i;


export function quantFromFileType(fileType: number): string {
  return LLAMA_FILE_TYPES[fileType] ?? `ftype-${fileType}`;
}

export function quantFromName(name: string): string | null {
  return QUANT_IN_NAME.exec(name)?.[1]?.toUpperCase() ?? null;
}

/**
 * The quant a replica serves (ORCH-3027 `quant`): the pool's declared one, else the GGUF's own file
 * type, else a tag in the model's name (the mock has no file), else null — unknown, never guessed.
 */
export function describeQuant(declared: string | null | undefined, modelPath: string | undefined): string | null {
  if (declared) return declared;
  if (modelPath === undefined) return null;
  try {
    const fileType = readGgufHeader(modelPath).metadata.get('general.file_type');
    if (fileType !== undefined && fileType.type !== 'array' && typeof fileType.value === 'number') return quantFromFileType(fileType.value);
  } catch {
    // Not a readable GGUF here (the mock's path, an engine on another host): the name may still say.
  }
  return quantFromName(modelPath);
}
