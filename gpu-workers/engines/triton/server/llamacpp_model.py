"""A Triton Python-backend model that generates with a llama-server on loopback.

Triton serves it as two models from one file (the `role` parameter in config.pbtxt, written by
launch-triton-server.py):

* `generate` (decoupled): one response per generated token, so Triton's generate extension
  (`POST /v2/models/<m>/generate_stream`) streams them. Inputs follow the TensorRT-LLM ensemble's
  names (`text_input`, `max_tokens`, `temperature`, `top_k`, `top_p`, `random_seed`, `stop_words`)
  plus `min_p`, `repetition_penalty` and `chat_messages` (a JSON list that llama-server renders with
  the model's chat template). Each token's response carries `text_output`; the last one (flag
  FINAL) carries llama-server's final text (usually empty) and the summary: `finish_reason`,
  `prompt_tokens`, `completion_tokens`, `decode_ms`.
* `tokenize`: `prompt_tokens` for a `text_input` (or `chat_messages`), counted as a completion
  counts them.

Cancellation: Triton marks a request cancelled when the generate_stream client goes away; the
model checks that before every token, closes its llama-server connection (llama-server then stops
the task) and only ends the request once llama-server reports no more busy slots than the model
still runs. `orch_triton_model_active_sequences` counts requests until then, so a client can tell
that an aborted request's work has stopped.
"""

import http.client
import json
import threading
import time
import traceback

import numpy as np
import triton_python_backend_utils as pb_utils

FINISH_REASONS = {"eos": "eos", "limit": "limit", "word": "word"}
# The slots check after a cancel: how long to wait for llama-server to drop the task, and how often to look.
STOP_CONFIRM_TIMEOUT_S = 10.0
STOP_CONFIRM_POLL_S = 0.02


def _string_input(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    value = tensor.as_numpy().reshape(-1)
    if value.size == 0:
        return None
    first = value[0]
    return first.decode("utf-8") if isinstance(first, bytes) else str(first)


def _string_list_input(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in tensor.as_numpy().reshape(-1)]


def _scalar_input(request, name, convert):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    value = tensor.as_numpy().reshape(-1)
    return convert(value[0]) if value.size > 0 else None


class EngineError(Exception):
    """llama-server refused or failed; the message goes to the client as the response's error."""

    def __init__(self, message, refused=False):
        super().__init__(message)
        # A request llama-server refuses (HTTP 400: context exceeded, a bad field) is the client's fault.
        self.refused = refused


def _triton_error(error):
    # Triton answers 400 to any error in a stream's first response, whatever its code, so the message says
    # whose fault it is: "invalid request: …" (not worth retrying) or "engine failure: …".
    if isinstance(error, EngineError) and error.refused:
        return pb_utils.TritonError(f"invalid request: {error}", pb_utils.TritonError.INVALID_ARG)
    if not isinstance(error, EngineError):
        pb_utils.Logger.log_error(traceback.format_exc())
    return pb_utils.TritonError(f"engine failure: {error!s}" if isinstance(error, EngineError) else f"engine failure: {error!r}", pb_utils.TritonError.INTERNAL)


class LlamaServer:
    """The few llama-server calls the model makes, over one loopback connection per call."""

    def __init__(self, host, port):
        self.host = host
        self.port = port

    def _connection(self, timeout):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def post_json(self, path, body, timeout=30.0):
        connection = self._connection(timeout)
        try:
            connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            if response.status != 200:
                raise EngineError(f"llama-server {path} answered {response.status}: {text[:300]}", refused=response.status == 400)
            return json.loads(text)
        finally:
            connection.close()

    def busy_slots(self):
        connection = self._connection(5.0)
        try:
            connection.request("GET", "/slots")
            response = connection.getresponse()
            slots = json.loads(response.read().decode("utf-8"))
            return sum(1 for slot in slots if slot.get("is_processing"))
        finally:
            connection.close()

    def prompt_text(self, prompt, chat_messages):
        if chat_messages is None:
            return prompt or ""
        return self.post_json("/apply-template", {"messages": chat_messages})["prompt"]

    def count_tokens(self, prompt):
        # As /completion tokenizes a string prompt: BOS added, special tokens parsed.
        return len(self.post_json("/tokenize", {"content": prompt, "add_special": True, "parse_special": True})["tokens"])


def _sse_events(response):
    """`data:` payloads of an SSE body, decoded; a partial UTF-8 sequence cannot occur (llama-server holds it back)."""
    data = []
    while True:
        line = response.readline()
        if not line:
            return
        line = line.rstrip(b"\r\n")
        if line == b"":
            if data:
                yield b"\n".join(data).decode("utf-8", errors="replace")
                data = []
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.role = parameters.get("role", "generate")
        self.model_name = args["model_name"]
        self.engine = LlamaServer("127.0.0.1", int(parameters["llama_server_port"]))
        self.lock = threading.Lock()
        self.running = 0
        self.threads = set()
        self.metric_families = []
        if self.role == "generate":
            self.active = self._metric("orch_triton_model_active_sequences", "Generations this model runs, each until llama-server has let its slot go", pb_utils.MetricFamily.GAUGE)
            self.generated = self._metric("orch_triton_model_generated_tokens_total", "Tokens generated since the model loaded", pb_utils.MetricFamily.COUNTER)
            self.inflight_tokens = self._metric("orch_triton_model_inflight_tokens", "Prompt and generated tokens of the generations running now", pb_utils.MetricFamily.GAUGE)

    def _metric(self, name, description, kind):
        # A Metric dies with its family: the family has to be kept as long as the metric.
        family = pb_utils.MetricFamily(name=name, description=description, kind=kind)
        self.metric_families.append(family)
        return family.Metric(labels={"model": self.model_name})

    def execute(self, requests):
        if self.role == "tokenize":
            return [self._tokenize(request) for request in requests]
        for request in requests:
            with self.lock:
                self.running += 1
                self.active.set(self.running)
            thread = threading.Thread(target=self._generate, args=(request,), daemon=True)
            self.threads.add(thread)
            thread.start()
        return None

    def _tokenize(self, request):
        try:
            prompt = self.engine.prompt_text(_string_input(request, "text_input"), self._chat_messages(request))
            count = self.engine.count_tokens(prompt)
            return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("prompt_tokens", np.array([count], dtype=np.int32))])
        except Exception as error:  # noqa: BLE001 - every failure goes back to the client as the response's error
            return pb_utils.InferenceResponse(error=_triton_error(error))

    @staticmethod
    def _chat_messages(request):
        raw = _string_input(request, "chat_messages")
        if raw is None or raw == "":
            return None
        try:
            messages = json.loads(raw)
        except ValueError as error:
            raise EngineError(f"chat_messages is not JSON: {error}", refused=True) from None
        if not isinstance(messages, list):
            raise EngineError("chat_messages must be a JSON list of {role, content}", refused=True)
        return messages

    def _completion_body(self, request, prompt):
        body = {
            "prompt": prompt,
            "n_predict": _scalar_input(request, "max_tokens", int) or 16,
            "stream": True,
            "cache_prompt": False,
            "return_tokens": True,
        }
        seed = _scalar_input(request, "random_seed", int)
        if seed is not None:
            body["seed"] = seed
        for name, wire in (("temperature", "temperature"), ("top_p", "top_p"), ("min_p", "min_p"), ("repetition_penalty", "repeat_penalty")):
            value = _scalar_input(request, name, float)
            if value is not None:
                body[wire] = value
        top_k = _scalar_input(request, "top_k", int)
        if top_k is not None:
            body["top_k"] = top_k
        samplers = _string_input(request, "samplers")
        if samplers:
            body["samplers"] = samplers.split(";")
        stop = _string_list_input(request, "stop_words")
        if stop:
            body["stop"] = [word for word in stop if word]
        return body

    def _generate(self, request):
        sender = request.get_response_sender()
        held_tokens = 0
        cancelled = False
        connection = None
        try:
            prompt = self.engine.prompt_text(_string_input(request, "text_input"), self._chat_messages(request))
            held_tokens = self.engine.count_tokens(prompt)
            self._add_inflight(held_tokens)
            connection = http.client.HTTPConnection(self.engine.host, self.engine.port, timeout=300)
            connection.request("POST", "/completion", body=json.dumps(self._completion_body(request, prompt)), headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            if response.status != 200:
                text = response.read().decode("utf-8", errors="replace")
                raise EngineError(f"llama-server /completion answered {response.status}: {text[:300]}", refused=response.status == 400)
            generated = 0
            for payload in _sse_events(response):
                if request.is_cancelled():
                    cancelled = True
                    break
                chunk = json.loads(payload)
                if chunk.get("error") is not None:
                    raise EngineError(f"llama-server failed mid-stream: {json.dumps(chunk['error'])[:300]}")
                tokens = len(chunk.get("tokens") or [])
                generated += tokens
                self.generated.increment(tokens)
                self._add_inflight(tokens)
                held_tokens += tokens
                content = chunk.get("content") or ""
                if chunk.get("stop"):
                    summary = [
                        pb_utils.Tensor("text_output", np.array([content.encode("utf-8")], dtype=np.object_)),
                        pb_utils.Tensor("finish_reason", np.array([FINISH_REASONS.get(chunk.get("stop_type"), "none").encode()], dtype=np.object_)),
                        pb_utils.Tensor("prompt_tokens", np.array([chunk.get("tokens_evaluated") or 0], dtype=np.int32)),
                        pb_utils.Tensor("completion_tokens", np.array([chunk.get("tokens_predicted") or generated], dtype=np.int32)),
                        pb_utils.Tensor("decode_ms", np.array([float((chunk.get("timings") or {}).get("predicted_ms") or 0.0)], dtype=np.float64)),
                    ]
                    sender.send(pb_utils.InferenceResponse(output_tensors=summary), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                    return
                if content:
                    sender.send(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("text_output", np.array([content.encode("utf-8")], dtype=np.object_))]))
            if not cancelled:
                raise EngineError("llama-server's stream ended before its final chunk")
        except Exception as error:  # noqa: BLE001 - reported to the client as the stream's error
            if not request.is_cancelled():
                self._send_final(sender, pb_utils.InferenceResponse(error=_triton_error(error)))
                return
            cancelled = True
        finally:
            if connection is not None:
                # Closing the connection is how llama-server learns to stop a streaming task.
                connection.close()
            if cancelled:
                self._confirm_stopped()
                self._send_final(sender, None)
            self._add_inflight(-held_tokens)
            with self.lock:
                self.running -= 1
                self.active.set(self.running)
            self.threads.discard(threading.current_thread())

    def _add_inflight(self, delta):
        if delta != 0:
            self.inflight_tokens.increment(delta)

    def _confirm_stopped(self):
        # The model is llama-server's only completion client: once it reports no more busy slots than the
        # other generations running here, the aborted task is gone.
        deadline = time.monotonic() + STOP_CONFIRM_TIMEOUT_S
        while time.monotonic() < deadline:
            with self.lock:
                others = self.running - 1
            try:
                if self.engine.busy_slots() <= others:
                    return
            except Exception:  # noqa: BLE001 - llama-server gone: nothing runs there any more
                return
            time.sleep(STOP_CONFIRM_POLL_S)
        pb_utils.Logger.log_warn(f"{self.model_name}: llama-server still busy {STOP_CONFIRM_TIMEOUT_S} s after a cancel")

    @staticmethod
    def _send_final(sender, response):
        try:
            sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        except Exception:  # noqa: BLE001 - a cancelled request may refuse more responses; it is over either way
            pass

    def finalize(self):
        for thread in list(self.threads):
            thread.join(timeout=5)
