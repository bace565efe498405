import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTgiDouble } from '../../gpu-workers/engines/tgi-double/tgi-double';
import type { TgiDouble } from '../../gpu-workers/engines/tgi-double/tgi-double';
import { ensurePythonTgiClient } from '../support/python-tgi-client';

/**
 * Issue 12 item 4: real TGI clients from PyPI read the TGI test double's frames. `text-generation` (TGI's own client,
 * pydantic models of StreamResponse/Response, error classes keyed on `error_type`) and `huggingface_hub`'s
 * InferenceClient, both through the routes they use (`POST /` with `stream`). A frame either client could not parse
 * fails the script; the adapter, verified against the double only, relies on the same frames.
 */
const PYTHON_CHECK = String.raw`
import json, sys, warnings
warnings.simplefilter("ignore")
from text_generation import Client
from text_generation.errors import OverloadedError, ValidationError
from huggingface_hub import InferenceClient

url = sys.argv[1]
out = {}
client = Client(url, timeout=30)
tokens, final = [], None
for response in client.generate_stream("Hello there", max_new_tokens=6, do_sample=True, seed=42):
    tokens.append({"text": response.token.text, "special": response.token.special})
    if response.generated_text is not None:
        final = {"generated_text": response.generated_text, "finish_reason": response.details.finish_reason.value,
                 "generated_tokens": response.details.generated_tokens, "seed": response.details.seed}
out["stream"] = {"tokens": tokens, "final": final}
whole = client.generate("Hello there", max_new_tokens=6, do_sample=True, seed=42)
out["generate"] = {"generated_text": whole.generated_text, "finish_reason": whole.details.finish_reason.value,
                   "tokens": [token.text for token in whole.details.tokens]}
eos = list(client.generate_stream("Say something", max_new_tokens=200))
out["eos"] = {"last_special": eos[-1].token.special, "finish_reason": eos[-1].details.finish_reason.value,
              "generated_text": eos[-1].generated_text, "shown": "".join(r.token.text for r in eos if not r.token.special)}
try:
    list(client.generate_stream("Hello there", max_new_tokens=100000))
    out["validation"] = None
except ValidationError as error:
    out["validation"] = str(error)

hub = InferenceClient(model=url, timeout=30)
hub_tokens, hub_final = [], None
for response in hub.text_generation("Hello there", max_new_tokens=6, do_sample=True, seed=42, stream=True, details=True, return_full_text=False):
    hub_tokens.append(response.token.text)
    if response.details is not None:
        hub_final = {"generated_text": response.generated_text, "finish_reason": response.details.finish_reason}
out["hub"] = {"tokens": hub_tokens, "final": hub_final}

held = client.generate_stream("Hold this", max_new_tokens=400)
next(held)
try:
    list(client.generate_stream("Hello there", max_new_tokens=2))
    out["overloaded"] = None
except OverloadedError as error:
    out["overloaded"] = str(error)
print(json.dumps(out))
`;

interface ClientReport {
  stream: { tokens: { text: string; special: boolean }[]; final: { generated_text: string; finish_reason: string; generated_tokens: number; seed: number } };
  generate: { generated_text: string; finish_reason: string; tokens: string[] };
  eos: { last_special: boolean; finish_reason: string; generated_text: string; shown: string };
  validation: string | null;
  hub: { tokens: string[]; final: { generated_text: string; finish_reason: string } };
  overloaded: string | null;
}

let python: string;
let double: TgiDouble;

beforeAll(async () => {
  python = await ensurePythonTgiClient();
  // One permit, so the script can hold it and see the next request refused.
  double = await startTgiDouble({ ttftMs: 0, interTokenMs: 2, maxConcurrentRequests: 1, maxTotalTokens: 512, emitEos: true });
}, 600_000);

afterAll(async () => {
  await double?.close();
});

test('TGI clients (text-generation 0.7.0, huggingface_hub InferenceClient) parse the double\'s stream, whole answer and errors', async () => {
  const { stdout } = await promisify(execFile)(python, ['-c', PYTHON_CHECK, double.url], { timeout: 120_000 });
  const report = JSON.parse(stdout) as ClientReport;
  const streamed = report.stream.tokens.map((token) => token.text).join('');
  expect(report.stream.final).toEqual({ generated_text: streamed, finish_reason: 'length', generated_tokens: 6, seed: 42 });
  // The same seed and inputs through /generate: the same tokens (the double is a pure function of them).
  expect(report.generate).toEqual({ generated_text: streamed, finish_reason: 'length', tokens: report.stream.tokens.map((token) => token.text) });
  expect(report.eos.last_special).toBe(true);
  expect(report.eos.finish_reason).toBe('eos_token');
  expect(report.eos.generated_text).toBe(report.eos.shown);
  expect(report.validation).toMatch(/^Input validation error: `inputs` tokens \+ `max_new_tokens` must be <= 512/);
  expect(report.hub.tokens.join('')).toBe(streamed);
  expect(report.hub.final).toEqual({ generated_text: streamed, finish_reason: 'length' });
  expect(report.overloaded).toBe('Model is overloaded');
});
