"""Starts a real Triton Inference Server (the `tritonserver` the nvidia-pytriton wheel bundles) serving
llamacpp_model.py on loopback, then becomes it (exec), so the caller's pid, signals and parent-death
setting are Triton's own.

PyTriton's own `Triton.bind` is not used: its proxy model never reads Triton's request cancellation,
so a client closing generate_stream would leave the generation running. A Python-backend model of our
own sees `request.is_cancelled()` (.specs/engines/triton.md).

Run with the venv's python: `python launch-triton-server.py --workdir DIR --model-name NAME ...`.
"""

import argparse
import json
import os
import pathlib
import shutil
import sys
import sysconfig

HERE = pathlib.Path(__file__).resolve().parent
MODEL_SOURCE = HERE / "llamacpp_model.py"

GENERATE_INPUTS = [
    ("text_input", "TYPE_STRING", True),
    ("chat_messages", "TYPE_STRING", True),
    ("max_tokens", "TYPE_INT32", True),
    ("random_seed", "TYPE_UINT64", True),
    ("temperature", "TYPE_FP32", True),
    ("top_k", "TYPE_INT32", True),
    ("top_p", "TYPE_FP32", True),
    ("min_p", "TYPE_FP32", True),
    ("repetition_penalty", "TYPE_FP32", True),
    ("samplers", "TYPE_STRING", True),
    ("stop_words", "TYPE_STRING", True, -1),
]
GENERATE_OUTPUTS = [
    ("text_output", "TYPE_STRING"),
    ("finish_reason", "TYPE_STRING"),
    ("prompt_tokens", "TYPE_INT32"),
    ("completion_tokens", "TYPE_INT32"),
    ("decode_ms", "TYPE_FP64"),
]


def tensor_block(kind, tensors):
    entries = []
    for tensor in tensors:
        name, data_type = tensor[0], tensor[1]
        optional = len(tensor) > 2 and tensor[2]
        dims = tensor[3] if len(tensor) > 3 else 1
        entry = f'  {{ name: "{name}" data_type: {data_type} dims: [ {dims} ]{" optional: true" if optional else ""} }}'
        entries.append(entry)
    return f"{kind} [\n" + ",\n".join(entries) + "\n]\n"


def model_config(name, role, decoupled, inputs, outputs, parameters):
    lines = [f'name: "{name}"', 'backend: "python"', "max_batch_size: 0"]
    if decoupled:
        lines.append("model_transaction_policy { decoupled: true }")
    text = "\n".join(lines) + "\n" + tensor_block("input", inputs) + tensor_block("output", outputs)
    text += "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
    for key, value in {"role": role, **parameters}.items():
        text += f'parameters {{ key: "{key}" value: {{ string_value: {json.dumps(str(value))} }} }}\n'
    return text


def write_model(repository, name, config):
    directory = repository / name
    (directory / "1").mkdir(parents=True, exist_ok=True)
    (directory / "config.pbtxt").write_text(config)
    shutil.copyfile(MODEL_SOURCE, directory / "1" / "model.py")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True, type=pathlib.Path)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--llama-server-port", required=True, type=int)
    parser.add_argument("--http-port", required=True, type=int)
    parser.add_argument("--metrics-port", required=True, type=int)
    parser.add_argument("--context-per-slot", required=True, type=int)
    parser.add_argument("--slots", required=True, type=int)
    parser.add_argument("--engine-build", default="", help="the wrapped llama-server's build, published as a model parameter")
    parser.add_argument("--model-path", default="", help="the GGUF llama-server loaded, published as a model parameter")
    parser.add_argument("--log-verbose", default=0, type=int)
    args = parser.parse_args()

    import pytriton  # the wheel that carries the server; imported here so --help works without it

    dist = pathlib.Path(pytriton.__file__).resolve().parent / "tritonserver"
    libs = dist.parent.parent / "nvidia_pytriton.libs"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        sys.exit(f"nvidia-pytriton has no Python-backend stub for Python {version} (it ships 3.8 to 3.13)")

    # The Python backend looks for its stub next to libtriton_python.so; PyTriton lays it out the same way.
    backends = args.workdir / "backends"
    shutil.rmtree(backends, ignore_errors=True)
    shutil.copytree(dist / "backends", backends)
    shutil.copy(stub, backends / "python" / "triton_python_backend_stub")

    repository = args.workdir / "models"
    shutil.rmtree(repository, ignore_errors=True)
    shared = {"llama_server_port": args.llama_server_port}
    published = {
        **shared,
        "context_length": args.context_per_slot,
        "max_sequences": args.slots,
        "engine_build": args.engine_build,
        "model_path": args.model_path,
        "tokenizer_model": f"{args.model_name}_tokenize",
    }
    write_model(repository, args.model_name, model_config(args.model_name, "generate", True, GENERATE_INPUTS, GENERATE_OUTPUTS, published))
    write_model(
        repository,
        f"{args.model_name}_tokenize",
        model_config(f"{args.model_name}_tokenize", "tokenize", False, GENERATE_INPUTS[:2], [("prompt_tokens", "TYPE_INT32")], shared),
    )

    env = dict(os.environ)
    # The stub links libpython3.X.so by name; the interpreter's own must win over a distribution's copy of
    # another patch release (their stdlib and C objects differ).
    library_path = [str(libs)]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        library_path.insert(0, sysconfig.get_config_var("LIBDIR"))
    env["LD_LIBRARY_PATH"] = ":".join(library_path + [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p])
    # The stub imports numpy and the model's modules from this venv.
    env["PYTHONPATH"] = ":".join(sysconfig.get_paths()["purelib"].split(":") + [p for p in env.get("PYTHONPATH", "").split(":") if p])
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}:{env.get('PATH', '')}"

    binary = str(dist / "bin" / "tritonserver")
    argv = [
        binary,
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        f"--cache-directory={dist / 'caches'}",
        "--http-address=127.0.0.1",
        f"--http-port={args.http_port}",
        "--allow-grpc=false",
        "--allow-sagemaker=false",
        "--allow-vertex-ai=false",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={args.metrics_port}",
        "--allow-gpu-metrics=false",
        "--strict-readiness=true",
        "--exit-timeout-secs=5",
        f"--log-verbose={args.log_verbose}",
    ]
    sys.stdout.flush()
    os.execve(binary, argv, env)


if __name__ == "__main__":
    main()
